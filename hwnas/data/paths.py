"""Where the public benchmark files live: `data_dir` in the config, else $HWNAS_DATA_DIR."""
from __future__ import annotations

import os
from pathlib import Path

from hwnas.errors import DataError

DATA_ENV = "HWNAS_DATA_DIR"
README_HINT = "README.md, section 'Data: the public benchmark files'"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder as an absolute path; one clear error when it is not set or absent."""
    raw = data_dir if data_dir not in (None, "") else os.environ.get(DATA_ENV)
    if not raw:
        raise DataError(
            f"no data directory: set data_dir=<folder> or the environment variable {DATA_ENV} "
            f"to the folder holding the public benchmark files (see {README_HINT})"
        )
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise DataError(
            f"data directory {path} does not exist (from "
            f"{'data_dir' if data_dir else DATA_ENV}); see {README_HINT}"
        )
    return path


def data_file(data_dir: str | os.PathLike | None, name: str) -> Path:
    """Path of one benchmark file; names the file, the variable and the README when missing."""
    path = resolve_data_dir(data_dir) / name
    if not path.is_file():
        raise DataError(
            f"missing data file {name} in {path.parent} (set by data_dir or {DATA_ENV}); "
            f"{README_HINT} says where the public original comes from"
        )
    return path
