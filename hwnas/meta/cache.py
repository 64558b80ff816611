"""Cache of meta-trained models: keyed by what they were built from, rebuilt when that changes.

A model's key hashes the data files' contents, the settings, the excluded targets, the seed,
the torch version and a format version; the file lives under the user cache dir
(hwnas/userdirs.py), never in the repository, and is written atomically. An unreadable file is
one warning and a rebuild, never a failure.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

from hwnas.io import atomic_path, sha256_file
from hwnas.userdirs import user_cache_dir


@functools.lru_cache(maxsize=8)
def _digest(path: str, mtime: float, size: int) -> str:
    return sha256_file(path)


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (memoised per path, mtime and size: an edited file is read again)."""
    st = Path(path).stat()
    return _digest(str(Path(path).resolve()), st.st_mtime, st.st_size)


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able description of what a model depends on."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cache_path(kind: str, key: str) -> Path:
    return user_cache_dir() / "meta" / kind / f"{key}.pt"


def load_or_build(path: Path, build: Callable[[], dict], check: Callable[[dict], None] | None = None) -> tuple[dict, bool]:
    """(state, built): the state saved at `path`, else `build()` saved there atomically.

    `check(state)` raises on a file that loads but is not what this code writes.
    """
    import torch

    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if check is not None:
                check(state)
            return state, False
        except Exception as exc:  # any unreadable or foreign file: rebuild it, never fail the run
            warnings.warn(f"ignoring unreadable meta-trained model {path} ({type(exc).__name__}: {exc}); "
                          f"training it again", stacklevel=2)
    state = build()
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    return state, True
