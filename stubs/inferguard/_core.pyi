# Type stub for the cffi-compiled module `inferguard._core` (built from native/).
from typing import Any

class _CData: ...

class _FFI:
    NULL: _CData
    def new(self, cdecl: str, init: Any = ...) -> Any: ...
    def cast(self, cdecl: str, value: Any) -> Any: ...
    def from_buffer(self, python_buffer: Any, require_writable: bool = ...) -> Any: ...
    def buffer(self, cdata: Any, size: int = ...) -> Any: ...
    def gc(self, cdata: Any, destructor: Any, size: int = ...) -> Any: ...
    def release(self, cdata: Any) -> None: ...

class _Lib:
    LCT_ROW_OK: int
    LCT_ROW_MALFORMED: int
    LCT_ROW_OP_TABLE_FULL: int
    LCT_ROW_QUALNAME_LONG: int
    LCT_STOP_END: int
    LCT_STOP_NEED_MORE: int
    LCT_STOP_FULL: int
    LCT_STOP_MALFORMED: int
    LCT_MAX_OPS: int
    LCT_MAX_QUALNAME: int
    def lct_interner_new(self) -> Any: ...
    def lct_interner_free(self, interner: Any) -> None: ...
    def lct_interner_size(self, interner: Any) -> int: ...
    def lct_interner_name(self, interner: Any, id: int, length: Any) -> Any: ...
    def lct_interner_intern(self, interner: Any, name: bytes, n: int) -> int: ...
    def lct_scan(
        self, buf: Any, length: int, pos: Any, base: int, interner: Any, cols: Any
    ) -> int: ...
    def lct_decode_record(
        self,
        body: Any,
        n: int,
        t_mono: Any,
        t_wall: Any,
        qual_off: Any,
        qual_len: Any,
        nkeys: Any,
    ) -> int: ...

    # --- .lct trace analytics (lct_keys.c) ---
    LCT_KEY_OK: int
    LCT_KEY_MALFORMED: int
    LCT_NAME_NONE: int
    LCT_NAME_UNINTERNED: int
    def lct_keyx_new(self) -> Any: ...
    def lct_keyx_free(self, x: Any) -> None: ...
    def lct_keyx_names(self, x: Any, which: int) -> Any: ...
    def lct_extract_keys(
        self,
        buf: Any,
        length: int,
        base: int,
        offset: Any,
        lengths: Any,
        status: Any,
        nrows: int,
        cur: Any,
        x: Any,
        out: Any,
    ) -> int: ...
    def lct_hash_bytes(self, p: Any, n: int, seed: int) -> int: ...
    def lct_key_fingerprint(
        self,
        hash: Any,
        hash_len: int,
        model: Any,
        model_len: int,
        kv_rank: int,
        group: int,
        salt: Any,
        salt_len: int,
        has_salt: int,
    ) -> int: ...
    def lct_keytab_intern(self, t: Any, fp: Any, use: Any, n: int, out: Any) -> int: ...

    # --- Prometheus text (prom.h) ---
    PROM_OPENMETRICS: int
    PROM_K_SAMPLE: int
    PROM_K_HELP: int
    PROM_K_TYPE: int
    PROM_K_UNIT: int
    PROM_K_COMMENT: int
    PROM_K_BLANK: int
    PROM_K_EOF: int
    PROM_K_ERROR: int
    PROM_STOP_END: int
    PROM_STOP_FULL: int
    PROM_NAMES: int
    PROM_STRS: int
    def prom_state_new(self) -> Any: ...
    def prom_state_free(self, st: Any) -> None: ...
    def prom_state_count(self, st: Any, which: int) -> int: ...
    def prom_state_bytes(self, st: Any, which: int) -> int: ...
    def prom_state_export(self, st: Any, which: int, data: Any, off: Any, length: Any) -> None: ...
    def prom_state_first_rows(self, st: Any, out: Any) -> None: ...
    def prom_scan(
        self,
        buf: Any,
        length: int,
        pos: Any,
        line: Any,
        flags: int,
        st: Any,
        rows: Any,
        labels: Any,
    ) -> int: ...
    def prom_parse_number(self, s: bytes, n: int, specials: int, out: Any) -> int: ...
    def prom_utf8_error(self, s: bytes, n: int) -> int: ...

ffi: _FFI
lib: _Lib
