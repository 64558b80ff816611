"""Validated CSV reading: a malformed file is reported with its line number."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

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
