"""`inferguard ARGS...` with the per-line log reader and per-line redacted copy it had before
the block reader (the oracles of tests/test_log_scan_identity.py), for the whole-command
rows of bench_logs.py: `python -m benchmarks.log_oracle lmcache-compat --lmcache-log-file F`.
"""

from __future__ import annotations

import sys

from inferguard import _packet
from inferguard.cli import main
from inferguard.evidence import _readers
from tests.test_log_scan_identity import old_read_log, old_redacted_lines

if __name__ == "__main__":
    _readers.READERS["log"] = old_read_log  # type: ignore[assignment]
    _packet.redacted_lines = old_redacted_lines  # type: ignore[assignment]
    sys.exit(main(sys.argv[1:]))
