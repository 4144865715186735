"""`TraceColumns`: every frame of a trace as flat numpy columns (`TraceFile.scan`).

Its own module: a dataclass over numpy arrays (msgspec cannot type its fields without
importing numpy), loaded with the columnar scan that needs numpy anyway, not by every trace
command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from inferguard.lct import _frame as tf

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from inferguard.lct._summary import TraceFinding

__all__ = ["TraceColumns"]


@dataclass(frozen=True)
class TraceColumns:
    """Every frame after the header as flat columns (one row per frame, damaged ones too).

    `status` is 0 for a record, 1 for a malformed frame, 2/3 for a record whose qualname
    could not be given an op id (too many distinct names / name too long). `op` indexes
    `ops`; `nkeys` counts ObjectKey arguments."""

    offset: npt.NDArray[np.int64]
    length: npt.NDArray[np.uint32]
    t_mono: npt.NDArray[np.float64]
    t_wall: npt.NDArray[np.float64]
    op: npt.NDArray[np.int32]
    nkeys: npt.NDArray[np.int32]
    status: npt.NDArray[np.uint8]
    ops: tuple[str, ...]
    findings: tuple[TraceFinding, ...]

    @property
    def records(self) -> npt.NDArray[np.bool_]:
        """Mask of rows that are decodable records."""

        mask: npt.NDArray[np.bool_] = self.status != tf.ROW_MALFORMED
        return mask
