"""Validated CSV reading: a malformed file is reported with its line number."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from hwnas.errors import DataError


def read_csv_checked(
    path: Path,
    required: Sequence[str],
    numeric: Sequence[str] = (),
    expected_rows: int | None = None,
    **kwargs,
) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, skipinitialspace=True, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc}); restore the file") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; header has {', '.join(map(str, df.columns))}"
        )
    for col in numeric:
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            # +2: one for the header line, one because lines count from 1.
            raise DataError(
                f"{path}, line {row + 2}: column {col!r} has {df[col].iloc[row]!r}, not a number"
            )
        df[col] = values
    if expected_rows is not None and len(df) != expected_rows:
        raise DataError(
            f"{path}: {len(df)} data rows, expected {expected_rows}; the file is truncated or "
            f"not the public original"
        )
    return df


def check_range(df: pd.DataFrame, path: Path, column: str, low: float | None = None, high: float | None = None,
                low_open: bool = False, rows=None) -> None:
    """Every value of numeric `column` finite and within [low, high] (`low_open`: > low); else one
    DataError naming the file, the column and the first bad line. `rows` (bool mask) limits the check."""
    v = df[column].to_numpy(dtype=float)
    ok = np.isfinite(v)
    if low is not None:
        ok &= (v > low) if low_open else (v >= low)
    if high is not None:
        ok &= v <= high
    if rows is not None:
        ok |= ~np.asarray(rows, dtype=bool)
    bad = np.nonzero(~ok)[0]
    if len(bad):
        row = int(bad[0])
        want = "finite" + ("" if low is None else f", {'>' if low_open else '>='} {low:g}") + \
            ("" if high is None else f", <= {high:g}")
        # +2: the header line, and lines count from 1.
        raise DataError(f"{path}, line {row + 2}: column {column!r} has {df[column].iloc[row]!r}, which is impossible "
                        f"(must be {want}); {int((~ok).sum())} such row(s); restore the public file")
