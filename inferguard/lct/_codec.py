"""The `{"__t__": tag, "v": payload}` argument codec of LMCache traces, unwrapped into types.

Upstream wraps every non-msgpack value in a trace record's args as a tagged map. We turn
the tags we know into typed, immutable values and keep every other tag as a `TaggedValue`,
so a trace from a newer server still reads. A known tag whose payload does not have the
expected shape is also kept as a `TaggedValue`: decoding never fails on args.
"""

from __future__ import annotations

from typing import Any

import msgspec

WRAP_KEY = "__t__"
VALUE_KEY = "v"


class TaggedValue(msgspec.Struct, frozen=True):
    """A wrapped value whose tag is unknown (or whose payload did not fit its tag)."""

    tag: str
    value: Any


class EnumValue(msgspec.Struct, frozen=True):
    """An upstream enum member recorded by name (PrefetchLockMode, TrimPolicy, PrefetchMode)."""

    enum: str
    name: str


class ObjectKey(msgspec.Struct, frozen=True):
    """One KV chunk key. `kv_rank` is bit-packed; the properties unpack it."""

    chunk_hash: bytes
    model_name: str
    kv_rank: int
    object_group_id: int = 0
    cache_salt: str | None = None

    @property
    def world_size(self) -> int:
        return (self.kv_rank >> 24) & 0xFF

    @property
    def global_rank(self) -> int:
        return (self.kv_rank >> 16) & 0xFF

    @property
    def local_world_size(self) -> int:
        return (self.kv_rank >> 8) & 0xFF

    @property
    def local_rank(self) -> int:
        return self.kv_rank & 0xFF


class MemoryLayoutDesc(msgspec.Struct, frozen=True):
    """Tensor shapes and dtype names (e.g. "torch.float16") of one chunk layout."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]


class GroupedObjectKeys(msgspec.Struct, frozen=True):
    """Keys of one object group with their layout (0.5.x prefetch specs)."""

    keys: tuple[Any, ...]
    object_group_id: int
    layout_desc: Any
    sliding_window_size: int


class MemoryTags(msgspec.Struct, frozen=True):
    """An L1 manager's or L2 adapter's memory tags (LMCache 0.5.7 `distributed/api.py`
    MemoryTags; trace tag `MemoryTags`, payload `{segment, residency}` as enum values)."""

    segment: str
    residency: str


# LMCache 0.5.7 distributed/api.py: MemorySegment and MemoryResidency values.
MEMORY_SEGMENTS = frozenset(["vram", "dram", "cxl", "gds", "storage"])
MEMORY_RESIDENCIES = frozenset(["local", "remote", "dummy"])


class PrefetchTaskSpec(msgspec.Struct, frozen=True):
    """The `spec` argument of `submit_prefetch_task` in 0.5.x. Trace schema 2 (0.5.7) adds
    the memory-tag filters: None (no filter) or a frozenset of `MemoryTags` (empty: none
    allowed); schema-1 specs have neither and read as None."""

    key_groups: tuple[Any, ...]
    num_kv_readers: int
    fetching_policy: Any
    lock_mode: Any
    allowed_l1_memory_tags: frozenset[MemoryTags] | None = None
    allowed_l2_memory_tags: frozenset[MemoryTags] | None = None


class PrefetchRequestSpec(msgspec.Struct, frozen=True):
    """The older `spec` argument of `submit_prefetch_task`; fields vary across versions."""

    fields: dict[str, Any]


class PrefetchHandle(msgspec.Struct, frozen=True):
    """A prefetch handle; its fields changed across versions, so they are kept as a map."""

    fields: dict[str, Any]


class AttnWindowDesc(msgspec.Struct, frozen=True):
    """Sliding-window attention description."""

    num_chunks_in_sw: tuple[int, ...]
    world_size: int = 1


_ENUM_TAGS = frozenset(["PrefetchLockMode", "TrimPolicy", "PrefetchMode"])


def _int(x: Any) -> int:
    if type(x) is not int:
        raise TypeError("expected int")
    return x


def _str(x: Any) -> str:
    if not isinstance(x, str):
        raise TypeError("expected str")
    return x


def _ints(x: Any) -> tuple[int, ...]:
    if not isinstance(x, list):
        raise TypeError("expected list")
    return tuple(_int(i) for i in x)


def _object_key(v: Any) -> ObjectKey:
    if not isinstance(v, dict) or not isinstance(v.get("chunk_hash"), bytes):
        raise TypeError("ObjectKey payload")
    salt = v.get("cache_salt")
    return ObjectKey(
        chunk_hash=v["chunk_hash"],
        model_name=_str(v["model_name"]),
        kv_rank=_int(v["kv_rank"]),
        object_group_id=_int(v.get("object_group_id", 0)),
        cache_salt=salt if isinstance(salt, str) else None,
    )


def _layout(v: Any) -> MemoryLayoutDesc:
    if not isinstance(v, dict) or not isinstance(v.get("shapes"), list):
        raise TypeError("MemoryLayoutDesc payload")
    dtypes = v["dtypes"]
    if not isinstance(dtypes, list):
        raise TypeError("dtypes")
    return MemoryLayoutDesc(shapes=tuple(_ints(s) for s in v["shapes"]),
                            dtypes=tuple(_str(d) for d in dtypes))


def _grouped(v: Any) -> GroupedObjectKeys:
    if not isinstance(v, dict) or not isinstance(v.get("keys"), list):
        raise TypeError("GroupedObjectKeys payload")
    return GroupedObjectKeys(
        keys=tuple(unwrap(k) for k in v["keys"]),
        object_group_id=_int(v["object_group_id"]),
        layout_desc=unwrap(v.get("layout_desc")),
        sliding_window_size=_int(v.get("sliding_window_size", -1)),
    )


def _memory_tags(v: Any) -> MemoryTags:
    """0.5.7 codecs.py `_dec_memory_tags`: both keys, each a member's value."""
    if not isinstance(v, dict):
        raise TypeError("MemoryTags payload")
    seg, res = _str(v["segment"]), _str(v["residency"])
    if seg not in MEMORY_SEGMENTS or res not in MEMORY_RESIDENCIES:
        raise ValueError("not a MemorySegment / MemoryResidency value")
    return MemoryTags(seg, res)


def _allowed_tags(v: Any) -> frozenset[MemoryTags] | None:
    """0.5.7 codecs.py `_dec_allowed_tags`: None stays None, a list becomes a frozenset of
    decoded MemoryTags (any other member fails the whole spec, as upstream's decode does)."""
    if v is None:
        return None
    if not isinstance(v, list):
        raise TypeError("allowed memory tags")
    out = [unwrap(t) for t in v]
    if not all(isinstance(t, MemoryTags) for t in out):
        raise TypeError("allowed memory tags member")
    return frozenset(out)


def _task_spec(v: Any) -> PrefetchTaskSpec:
    if not isinstance(v, dict) or not isinstance(v.get("key_groups"), list):
        raise TypeError("PrefetchTaskSpec payload")
    return PrefetchTaskSpec(
        key_groups=tuple(unwrap(g) for g in v["key_groups"]),
        num_kv_readers=_int(v["num_kv_readers"]),
        fetching_policy=unwrap(v.get("fetching_policy")),
        lock_mode=unwrap(v.get("lock_mode")),
        allowed_l1_memory_tags=_allowed_tags(v.get("allowed_l1_memory_tags")),
        allowed_l2_memory_tags=_allowed_tags(v.get("allowed_l2_memory_tags")),
    )


def _fields(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise TypeError("map payload")
    return {str(k): unwrap(x) for k, x in v.items()}


def _attn(v: Any) -> AttnWindowDesc:
    if isinstance(v, list):
        return AttnWindowDesc(num_chunks_in_sw=_ints(v))
    if not isinstance(v, dict):
        raise TypeError("AttnWindowDesc payload")
    return AttnWindowDesc(num_chunks_in_sw=_ints(v["num_chunks_in_sw"]),
                          world_size=_int(v.get("world_size", 1)))


def _set(v: Any) -> Any:
    if not isinstance(v, list):
        raise TypeError("set payload")
    items = [unwrap(x) for x in v]
    try:
        return frozenset(items)
    except TypeError:  # unhashable members: keep them, in order
        return TaggedValue("set", tuple(items))


_DECODERS: dict[str, Any] = {
    "ObjectKey": _object_key,
    "MemoryLayoutDesc": _layout,
    "GroupedObjectKeys": _grouped,
    "PrefetchTaskSpec": _task_spec,
    "MemoryTags": _memory_tags,
    "PrefetchRequestSpec": lambda v: PrefetchRequestSpec(_fields(v)),
    "PrefetchHandle": lambda v: PrefetchHandle(_fields(v)),
    "AttnWindowDesc": _attn,
    "torch.Size": _ints,
    "torch.dtype": _str,
    "tuple": lambda v: tuple(unwrap(x) for x in v) if isinstance(v, list) else _bad(),
    "set": _set,
}


def _bad() -> Any:
    raise TypeError("payload")


def unwrap(value: Any) -> Any:
    """Decode codec wrappers anywhere inside `value` (a msgspec-decoded args tree)."""
    if isinstance(value, list):
        return [unwrap(x) for x in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(WRAP_KEY)
    if isinstance(tag, str) and len(value) == 2 and VALUE_KEY in value:
        payload = value[VALUE_KEY]
        if tag in _ENUM_TAGS and isinstance(payload, str):
            return EnumValue(tag, payload)
        decoder = _DECODERS.get(tag)
        if decoder is not None:
            try:
                return decoder(payload)
            except (TypeError, KeyError, ValueError):
                pass
        return TaggedValue(tag, unwrap(payload))
    return {k: unwrap(x) for k, x in value.items()}
