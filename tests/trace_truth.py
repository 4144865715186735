"""Storage-level traces whose true analytics are known: a workload generator that records
what it wrote, and a plain-Python oracle of the documented semantics (one key at a time,
dicts only), independent of the vectorised engine. Tests only."""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from . import lct_writer as w

Key = tuple[bytes, str, int, int, "str | None"]
P = w.STORAGE_PREFIX


@dataclass
class Rec:
    """One record the generator wrote: method (or a full qualname), keys (None: malformed)."""

    qualname: str
    keys: list[Key | None]
    t: float
    offset: int = 0


def _key_obj(k: Key | None, salted: bool) -> dict[str, Any]:
    if k is None:  # a payload that is not a key: model_name of the wrong type
        return w.wrap("ObjectKey", {"chunk_hash": b"x", "model_name": 5, "kv_rank": 0})
    h, model, rank, group, salt = k
    v: dict[str, Any] = {"chunk_hash": h, "model_name": model, "kv_rank": rank,
                         "object_group_id": group}
    if salted:
        v["cache_salt"] = salt
    return w.wrap("ObjectKey", v)


def _args(method: str, keys: list[Key | None], salted: bool, rid: int) -> dict[str, Any]:
    objs = [_key_obj(k, salted) for k in keys]
    if method == "submit_prefetch_task":
        group = w.wrap("GroupedObjectKeys", {"keys": objs, "object_group_id": 0,
                                             "layout_desc": w.layout(),
                                             "sliding_window_size": -1})
        return {"spec": w.wrap("PrefetchTaskSpec", {
            "key_groups": [group], "num_kv_readers": 1, "fetching_policy": "prefix",
            "lock_mode": w.wrap("PrefetchLockMode", "LOCK")}),
            "external_request_id": f"req-{rid}", "skip_l2": False}
    if method == "reserve_write":
        return {"keys": objs, "layout_desc": w.layout(), "mode": "new"}
    if method == "finish_read_prefetched":
        return {"keys": objs, "read_locks": 1}
    return {"keys": objs}


@dataclass
class Workload:
    data: bytes
    recs: list[Rec]
    salted: bool


def generate(seed: int, requests: int, *, models: tuple[str, ...] = ("m-a", "m-b"),
             ranks: tuple[int, ...] = (0x01000100, 0x02000200, 0x02010201),
             salts: tuple[str | None, ...] = (None,), groups: tuple[int, ...] = (0, 1),
             docs: int | None = None, t_step: float = 0.05) -> Workload:
    """A workload like the 0.5.6 traces, with every kind of lifecycle break mixed in."""
    rng = random.Random(seed)
    salted = any(s is not None for s in salts)
    docs = docs or max(3, requests // 12)
    stored: set[Key] = set()
    recs: list[Rec] = []
    t = 1.0

    def emit(method: str, keys: list[Key | None], qual: str | None = None) -> None:
        nonlocal t
        t += rng.expovariate(1 / t_step)
        if rng.random() < 0.01:
            t += 3.0  # an idle gap
        recs.append(Rec(qual or P + method, keys, t))

    fresh = 0
    for _ in range(requests):
        ctx = (rng.choice(models), rng.choice(ranks), rng.choice(groups), rng.choice(salts))
        doc = rng.randrange(docs)
        n = rng.randint(1, 8)
        keys: list[Key] = [(hashlib.sha256(f"{doc}:{j}".encode()).digest(), *ctx)
                           for j in range(n)]
        emit("submit_prefetch_task", list(keys))
        prefix = []
        for k in keys:
            if k not in stored:
                break
            prefix.append(k)
        if len(prefix) == n and rng.random() < 0.9:
            x = rng.random()
            if x < 0.05:
                pass  # looked up, never read
            elif x < 0.1:
                emit("read_prefetched_results.__enter__", list(keys))  # leaked context
            elif x < 0.55:
                emit("read_prefetched_results.__enter__", list(keys))
                emit("read_prefetched_results.__exit__", list(keys))
                emit("finish_read_prefetched", list(keys))
            else:
                emit("finish_read_prefetched", list(keys))
        else:
            if prefix and rng.random() < 0.7:
                emit("finish_read_prefetched", list(prefix))
            new = keys[len(prefix):]
            if prefix and rng.random() < 0.1:
                emit("reserve_write", list(prefix))  # a redundant, rejected re-store
            if new:
                emit("reserve_write", list(new))
                x = rng.random()
                if x < 0.85:
                    emit("finish_write", list(new))
                    stored.update(new)
                elif x < 0.92:
                    emit("abort_write", list(new))
                # else: never finished
            if prefix and rng.random() < 0.05:
                emit("reserve_write", list(prefix))  # a real rewrite
                emit("finish_write", list(prefix))
        x = rng.random()
        if x < 0.03:
            fresh += 1
            emit("finish_read_prefetched", [(hashlib.sha256(f"fresh{fresh}".encode()).digest(),
                                             *ctx)])
        elif x < 0.05:
            emit("other", [keys[0]], qual="lmcache.v1.other.Thing.method")
        elif x < 0.07:
            emit("finish_write", [None, keys[0]])
            stored.add(keys[0])
        elif x < 0.08:
            emit("read_prefetched_results.__exit__", [keys[-1]])  # exit without enter
        elif x < 0.09:
            emit("finish_write", list(keys[:1]))  # finish without reserve (if not pending)
            stored.add(keys[0])
    head = w.header("schema2" if salted else "schema1")
    out = bytearray(w.frame(head))
    for i, rec in enumerate(recs):
        rec.offset = len(out)
        method = rec.qualname.rsplit("StorageManager.", 1)[-1]
        body = w.record(rec.qualname, _args(method, rec.keys, salted, i), rec.t,
                        1_800_000_000.0 + rec.t)
        out += w.frame(body)
    return Workload(bytes(out), recs, salted)


# -- the oracle ----------------------------------------------------------------------------

ROLES = {"reserve_write", "finish_write", "abort_write", "submit_prefetch_task",
         "read_prefetched_results.__enter__", "read_prefetched_results.__exit__",
         "finish_read_prefetched"}


def role(qualname: str) -> str:
    _, sep, method = qualname.rpartition("StorageManager.")
    return method if sep and method in ROLES else "other"


@dataclass
class Truth:
    distinct: int = 0
    written: int = 0
    written_more_than_once: int = 0
    reserved: int = 0
    looked_up: int = 0
    read: int = 0
    read_never_written: int = 0
    looked_up_never_read: int = 0
    key_rows: int = 0
    malformed: int = 0
    reads: int = 0
    reads_of_written: int = 0
    lookups: int = 0
    lookups_of_written: int = 0
    writes: int = 0
    rewrites: int = 0
    reserves: int = 0
    reserves_of_written: int = 0
    lifecycle: dict[str, tuple[int, list[int]]] = field(default_factory=dict)
    op_rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # qualname -> rows, bad
    op_written: dict[str, int] = field(default_factory=dict)
    by_model: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    by_salt: dict[str | None, int] = field(default_factory=dict)  # key rows
    by_rank: dict[int, int] = field(default_factory=dict)
    by_group: dict[int, int] = field(default_factory=dict)


def oracle(recs: list[Rec]) -> Truth:
    tr = Truth()
    n_write: Counter[Key] = Counter()
    roles_of: defaultdict[Key, set[str]] = defaultdict(set)
    pend_lookup: dict[Key, tuple[int, bool]] = {}
    pend_reserve: dict[Key, tuple[int, bool]] = {}
    life: defaultdict[str, list[int]] = defaultdict(list)
    open_ctx: defaultdict[tuple[Any, ...], list[int]] = defaultdict(list)
    op_rows: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    op_written: Counter[str] = Counter()
    model_rows: Counter[str] = Counter()
    model_reads_w: Counter[str] = Counter()
    model_lookups_w: Counter[str] = Counter()
    keys_of_model: defaultdict[str, set[Key]] = defaultdict(set)
    salt_rows: Counter[str | None] = Counter()
    rank_rows: Counter[int] = Counter()
    group_rows: Counter[int] = Counter()
    for rec in recs:
        ro = role(rec.qualname)
        if ro in ("read_prefetched_results.__enter__", "read_prefetched_results.__exit__"):
            ks = tuple(sorted(rec.keys, key=repr))
            if ro.endswith("__enter__"):
                open_ctx[ks].append(rec.offset)
            elif open_ctx.get(ks):
                open_ctx[ks].pop()
            else:
                life["exits_without_enter"].append(rec.offset)
        for k in rec.keys:
            tr.key_rows += 1
            op_rows[rec.qualname][0] += 1
            if k is None:
                tr.malformed += 1
                op_rows[rec.qualname][1] += 1
                continue
            wb = n_write[k] > 0
            roles_of[k].add(ro)
            model_rows[k[1]] += 1
            keys_of_model[k[1]].add(k)
            salt_rows[k[4]] += 1
            rank_rows[k[2]] += 1
            group_rows[k[3]] += 1
            if ro == "submit_prefetch_task":
                tr.lookups += 1
                tr.lookups_of_written += wb
                op_written[rec.qualname] += wb
                model_lookups_w[k[1]] += wb
                if k in pend_lookup:
                    off, st = pend_lookup[k]
                    life["unserved_prefetches" if st else "cold_lookups_unread"].append(off)
                pend_lookup[k] = (rec.offset, wb)
            elif ro == "finish_read_prefetched":
                tr.reads += 1
                tr.reads_of_written += wb
                op_written[rec.qualname] += wb
                model_reads_w[k[1]] += wb
                if k in pend_lookup:
                    del pend_lookup[k]
                else:
                    life["reads_without_lookup"].append(rec.offset)
            elif ro == "reserve_write":
                tr.reserves += 1
                tr.reserves_of_written += wb
                op_written[rec.qualname] += wb
                if k in pend_reserve:
                    off, st = pend_reserve[k]
                    life["redundant_reserves" if st else "unfinished_writes"].append(off)
                pend_reserve[k] = (rec.offset, wb)
            elif ro == "finish_write":
                tr.writes += 1
                tr.rewrites += wb
                op_written[rec.qualname] += wb
                if k in pend_reserve:
                    del pend_reserve[k]
                else:
                    life["finish_without_reserve"].append(rec.offset)
                n_write[k] += 1
            elif ro == "abort_write":
                pend_reserve.pop(k, None)
    for off, st in pend_lookup.values():
        life["unserved_prefetches" if st else "cold_lookups_unread"].append(off)
    for off, st in pend_reserve.values():
        life["redundant_reserves" if st else "unfinished_writes"].append(off)
    for offs in open_ctx.values():
        life["open_read_contexts"] += offs
    keys = set(roles_of)
    read_keys = {k for k in keys if roles_of[k] & {"finish_read_prefetched",
                                                   "read_prefetched_results.__enter__"}}
    tr.distinct = len(keys)
    tr.written = sum(1 for k in keys if n_write[k])
    tr.written_more_than_once = sum(1 for k in keys if n_write[k] > 1)
    tr.reserved = sum(1 for k in keys if "reserve_write" in roles_of[k])
    tr.looked_up = sum(1 for k in keys if "submit_prefetch_task" in roles_of[k])
    tr.read = len(read_keys)
    tr.read_never_written = sum(1 for k in read_keys if not n_write[k])
    tr.looked_up_never_read = sum(1 for k in keys if "submit_prefetch_task" in roles_of[k]
                                  and k not in read_keys)
    for name in ("unfinished_writes", "redundant_reserves", "finish_without_reserve",
                 "open_read_contexts", "exits_without_enter", "unserved_prefetches",
                 "cold_lookups_unread", "reads_without_lookup"):
        offs = life.get(name, [])
        tr.lifecycle[name] = (len(offs), sorted(set(offs))[:20])
    tr.op_rows = {q: (v[0], v[1]) for q, v in op_rows.items()}
    tr.op_written = dict(op_written)
    tr.by_model = {m: (model_rows[m], len(keys_of_model[m]), model_reads_w[m],
                       model_lookups_w[m]) for m in model_rows}
    tr.by_salt = dict(salt_rows)
    tr.by_rank = dict(rank_rows)
    tr.by_group = dict(group_rows)
    return tr
