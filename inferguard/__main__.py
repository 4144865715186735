"""`python -m inferguard`."""

from inferguard.cli._main import main

raise SystemExit(main())
