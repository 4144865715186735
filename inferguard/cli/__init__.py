"""The `inferguard` command: parses arguments, calls the library, prints."""

from inferguard.cli._main import build_parser, console, main

__all__ = ["build_parser", "console", "main"]
