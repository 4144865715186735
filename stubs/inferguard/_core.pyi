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

ffi: _FFI
lib: _Lib
