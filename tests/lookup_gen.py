"""Lookup-hash JSONL as upstream's LookupHashLoggingSubscriber writes it, generated for tests
and benchmarks: prompts drawn from a Zipf law over a pool, each prompt a chain of chunks
that shares a prefix with its family (system prompt + documents), 16-token chunks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def generate_lookups(path: Path, lines: int, *, prompts: int = 20_000, seed: int = 0,
                     models: tuple[str, ...] = ("test-model",)) -> Path:
    """Write `lines` lookup lines to one lookup_hashes_*.jsonl under `path` (a directory)."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    out = path / "lookup_hashes_20261128_023922_000000.jsonl"
    pick = rng.zipf(1.3, size=lines) % prompts
    family = rng.integers(0, max(1, prompts // 20), size=prompts)
    nchunks = rng.integers(2, 9, size=prompts)
    model = rng.integers(0, len(models), size=prompts)
    ts = 1_795_833_562.0
    with open(out, "w") as f:
        for i, p in enumerate(pick.tolist()):
            k = int(nchunks[p])
            # the first half of a prompt's chunks is its family's, the rest its own
            shared = k // 2
            hashes = [f"0x{int(family[p]):016x}{c:048x}" for c in range(shared)]
            hashes += [f"0x{p + 1_000_000:016x}{c:048x}" for c in range(shared, k)]
            f.write(json.dumps({
                "timestamp": ts + i * 0.01, "request_id": f"req-{i}",
                "model_name": models[int(model[p])], "chunk_size": 16, "seq_len": k * 16 + 1,
                "dtypes": ["torch.float16"], "shapes": [[2, 2, 16, 32]],
                "chunk_hashes": hashes}) + "\n")
    return out
