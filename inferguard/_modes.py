"""The operating modes a packet can declare or detect (one table; the CLI's `--expect-mode`
choices read it without loading the packet layer)."""

MODES = ("mp", "embedded_vllm", "embedded_sglang", "p2p", "pd", "controller_only",
         "standalone_worker", "unknown")
