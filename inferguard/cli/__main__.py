"""`python -m inferguard.cli`."""

from inferguard.cli._main import main

raise SystemExit(main())
