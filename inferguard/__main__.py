"""`python -m inferguard`."""

from inferguard.cli._main import console

raise SystemExit(console())
