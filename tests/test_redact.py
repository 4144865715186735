"""The one redaction home: keys that name credentials, URL userinfo in values."""

from __future__ import annotations

from inferguard.evidence._launch import parse_launch_text
from inferguard.evidence._redact import REDACTED, filter_env, is_secret_key, redact


def test_secret_keys_and_counts() -> None:
    for key in ("HF_TOKEN", "api_token", "LMCACHE_REMOTE_PASSWORD", "OTEL_EXPORTER_OTLP_AUTH",
                "aws_secret_access_key", "API-KEY", "private_key"):
        assert is_secret_key(key), key
    for key in ("max_num_batched_tokens", "LMCACHE_CHUNK_SIZE", "PYTHONHASHSEED",
                "lmcache_worker_heartbeat_time"):
        assert not is_secret_key(key), key


def test_env_values_lose_url_credentials() -> None:
    kept, dropped = filter_env({"LMCACHE_REMOTE_URL": "redis://user:pw@cache:6379/0",
                                "LMCACHE_CHUNK_SIZE": "256", "HOME": "/root"})
    assert kept == {"LMCACHE_CHUNK_SIZE": "256",
                    "LMCACHE_REMOTE_URL": f"redis://{REDACTED}@cache:6379/0"}
    assert dropped == 1


def test_json_redaction_is_bounded_and_recursive() -> None:
    doc = {"a": [{"password": "x", "url": "http://u:p@h/"}], "n": 3}
    assert redact(doc) == {"a": [{"password": REDACTED, "url": f"http://{REDACTED}@h/"}],
                           "n": 3}
    deep: object = "leaf"
    for _ in range(100):
        deep = [deep]
    out = redact(deep)
    for _ in range(65):
        assert isinstance(out, list)
        out = out[0]
    assert out is None


def test_launch_flags_use_the_same_rules() -> None:
    f, _ = parse_launch_text("vllm serve m --hf-token abc --max-num-batched-tokens 4096 "
                          "--kv-transfer-config x --remote-url redis://u:p@h:1\n")
    flags = f.launches[0].flags
    assert flags["hf-token"] == REDACTED
    assert flags["max-num-batched-tokens"] == "4096"
    assert flags["remote-url"] == f"redis://{REDACTED}@h:1"
