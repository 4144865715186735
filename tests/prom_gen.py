"""Generate realistic `/metrics` expositions (vLLM + LMCache shapes) for tests and benchmarks.

Families follow what vLLM (`vllm:*`, colons kept by prometheus_client), embedded LMCache
(`lmcache:*`) and the LMCache MP server (`lmcache_mp_*`, OTel exporter names) expose:
counters, gauges and 17-bucket histograms (16 bounds + `+Inf`) over many label sets, plus
the python/process collectors and `target_info`. Values mix integers, Python float reprs,
exponents and (for gauges) NaN/Inf; a few label values carry escapes. Text 0.0.4 is written
as prometheus_client writes it; OpenMetrics as its OpenMetrics exposition does (counter
families without `_total`, `_created` series, UNIT lines, `# EOF`), with some exemplars and
timestamps.
"""

from __future__ import annotations

import random

from prometheus_client.utils import floatToGoString

__all__ = ["generate_exposition"]

LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                   2.5, 5.0, 7.5, 10.0]
TOKEN_BUCKETS = [1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
                 8192.0, 16384.0, 32768.0, 65536.0, 131072.0]
MODELS = ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
          "mistralai/Mistral-7B-Instruct-v0.3", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
          'lab/model "quoted" \\ v2']

# (name, type, help, unit) per family; histograms use the bucket list named in `unit`.
VLLM = [
    ("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", ""),
    ("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", ""),
    ("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", ""),
    ("vllm:prompt_tokens", "counter", "Number of prefill tokens processed.", ""),
    ("vllm:generation_tokens", "counter", "Number of generation tokens processed.", ""),
    ("vllm:prefix_cache_queries", "counter", "Prefix cache queries, in terms of tokens.", ""),
    ("vllm:prefix_cache_hits", "counter", "Prefix cache hits, in terms of tokens.", ""),
    ("vllm:time_to_first_token_seconds", "histogram", "Histogram of time to first token.",
     "seconds"),
    ("vllm:e2e_request_latency_seconds", "histogram", "Histogram of e2e request latency.",
     "seconds"),
    ("vllm:request_prompt_tokens", "histogram", "Number of prefill tokens processed.", "tokens"),
]
LMCACHE = [
    ("lmcache:num_requested_tokens", "counter", "Total number of tokens requested", ""),
    ("lmcache:num_hit_tokens", "counter", "Total number of tokens hit in lmcache", ""),
    ("lmcache:local_cache_usage", "gauge", "Local cache usage (bytes) of lmcache", ""),
    ("lmcache:retrieve_hit_rate", "gauge", "Hit rate of lmcache retrieve requests", ""),
    ("lmcache:time_to_retrieve", "histogram", "Time to retrieve from cache (seconds)",
     "seconds"),
    ("lmcache:time_to_store", "histogram", "Time to store to cache (seconds)", "seconds"),
    ("lmcache:retrieve_speed", "histogram", "Retrieval speed (tokens per second)", "tokens"),
]
LMCACHE_MP = [
    ("lmcache_mp_lookup_requested_tokens", "counter",
     "Chunk-aligned tokens requested by lookups", ""),
    ("lmcache_mp_lookup_hit_tokens", "counter", "Prefix tokens hit by lookups (L1+L2)", ""),
    ("lmcache_mp_l1_read_chunks", "counter", "Total chunks read from L1", ""),
    ("lmcache_mp_l1_usage_ratio", "gauge", "L1 used/total ratio (0.0-1.0)", ""),
    ("lmcache_mp_real_reuse_gap_seconds", "histogram",
     "Time between the last access and the next read of a chunk", "seconds"),
]
PROCESS = [
    ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", 2.288050176e+09),
    ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", 6.67820032e+08),
    ("process_start_time_seconds", "gauge",
     "Start time of the process since unix epoch in seconds.", 1.79583081072e+09),
    ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
     4.82),
]


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(x: float) -> str:
    """A value as prometheus_client writes it (Go-style: +Inf, NaN, 2.288050176e+09)."""
    return floatToGoString(x)


def _labels(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}" if pairs else ""


def generate_exposition(label_sets: int = 200, *, openmetrics: bool = False,
                        seed: int = 0) -> bytes:
    """An exposition with about 90 samples per label set (vLLM families use `label_sets`
    label sets, LMCache families as many again); a few hundred bytes of collectors on top."""
    rng = random.Random(seed)
    om = openmetrics
    out: list[str] = []
    w = out.append

    def header(name: str, typ: str, help_: str, unit: str = "") -> str:
        fam = name[:-6] if om and typ == "counter" and name.endswith("_total") else name
        w(f"# HELP {fam} {help_}\n")
        w(f"# TYPE {fam} {typ}\n")
        if om and unit and fam.endswith("_" + unit):
            w(f"# UNIT {fam} {unit}\n")
        return fam

    for name, typ, help_, value in PROCESS:
        fam = header(name, typ, help_, "bytes" if name.endswith("_bytes") else "")
        w(f"{fam}_total {_num(value)}\n" if om and typ == "counter" else f"{name} {_num(value)}\n")
    header("target_info", "gauge", "Target metadata")
    w('target_info{service_instance_id="bench-A",service_name="unknown_service",'
      'telemetry_sdk_language="python",telemetry_sdk_name="opentelemetry",'
      'telemetry_sdk_version="1.40.0"} 1.0\n')

    vllm_sets = [[("engine", str(i % 8)), ("model_name", f"{MODELS[i % len(MODELS)]}-r{i // 8}")]
                 for i in range(label_sets)]
    lm_sets = [[("cache_salt", "" if i % 3 else f"tenant-{i % 17}"),
                ("model_name", f"{MODELS[i % len(MODELS)]}-r{i // 16}"),
                ("worker_id", str(i % 16))] for i in range(label_sets)]

    def family(name: str, typ: str, help_: str, unit: str,
               sets: list[list[tuple[str, str]]]) -> None:
        fam = header(name + ("_total" if typ == "counter" else ""), typ, help_, unit)
        for n, labels in enumerate(sets):
            lab = _labels(labels)
            if typ == "counter":
                v = float(rng.randrange(0, 10**rng.randint(1, 9)))
                ex = ""
                if om and n % 7 == 0:
                    ex = f' # {{trace_id="{rng.getrandbits(64):016x}"}} 1.0 {1.7e9 + n}'
                w(f"{fam}_total{lab} {_num(v)}{ex}\n" if om else f"{fam}{lab} {_num(v)}\n")
                if om:
                    w(f"{fam}_created{lab} {_num(1.79583081072e9 + n)}\n")
            elif typ == "gauge":
                r = rng.random()
                v = float("nan") if r < 0.01 else float("inf") if r < 0.02 else (
                    0.0 if r < 0.3 else rng.random() * 10 ** rng.randint(-3, 9))
                ts = f" {1795830810720 + n}" if not om and n % 50 == 0 else (
                    f" {1795830810.72 + n}" if om and n % 50 == 0 else "")
                w(f"{fam}{lab} {_num(v)}{ts}\n")
            else:
                bounds = LATENCY_BUCKETS if unit == "seconds" else TOKEN_BUCKETS
                count = 0
                total = 0.0
                for b in bounds:
                    inc = rng.randrange(0, 5)
                    count += inc
                    total += inc * b * rng.random()
                    le = _labels([*labels, ("le", _num(b))])
                    ex = ""
                    if om and inc and n % 11 == 0:
                        ex = f' # {{trace_id="{rng.getrandbits(64):016x}"}} {_num(b / 2)}'
                    w(f"{fam}_bucket{le} {_num(float(count))}{ex}\n")
                w(f"{fam}_bucket{_labels([*labels, ('le', '+Inf')])} {_num(float(count))}\n")
                w(f"{fam}_count{lab} {_num(float(count))}\n")
                w(f"{fam}_sum{lab} {_num(total)}\n")
                if om:
                    w(f"{fam}_created{lab} {_num(1.79583081072e9 + n)}\n")

    for name, typ, help_, unit in VLLM:
        family(name, typ, help_, unit, vllm_sets)
    for name, typ, help_, unit in LMCACHE + LMCACHE_MP:
        family(name, typ, help_, unit, lm_sets)
    if om:
        w("# EOF\n")
    return "".join(out).encode()
