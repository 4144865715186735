"""Bounds of the trace analytics that the CLI shows as defaults (kept apart from the engine so
building the argument parser loads no numpy)."""

DEFAULT_MAX_KEYS = 1 << 19  # ~100 bytes a key: ~50 MiB at the limit
