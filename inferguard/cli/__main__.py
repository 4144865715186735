"""`python -m inferguard.cli`."""

from inferguard.cli._main import console

raise SystemExit(console())
