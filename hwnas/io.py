"""Atomic file writes: write to a temporary file beside the target, then rename.

A temporary file is named `.<target name>.hwnas-<pid>-<random><suffix>`: the pid of its
writer, so the leftovers of a killed writer (kill -9 skips every cleanup) can be told
from the file of a live one and removed by `clean_stale_temps`.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=suffix or ".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _mode_for(path))  # mkstemp's 0600 would otherwise replace the usual mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


TEMP_TAG = "hwnas-"
_TEMP_RE = re.compile(r"^\..+\." + TEMP_TAG + r"(\d+)-")


def temp_prefix(name: str, pid: int | None = None) -> str:
    """Start of the name of a temporary file (or folder) that stands for `name` while it is written."""
    return f".{name}.{TEMP_TAG}{os.getpid() if pid is None else pid}-"


def temp_owner(name: str) -> int | None:
    """pid encoded in a temporary name made by temp_prefix; None for any other name."""
    m = _TEMP_RE.match(name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (on this machine's pid namespace)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_dead_writers_temp(name: str) -> bool:
    """Whether `name` is a temporary name (temp_prefix) of a writer that is no longer running."""
    pid = temp_owner(name)
    return pid is not None and pid != os.getpid() and not pid_alive(pid)


def clean_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files in `folder` whose writer is dead (killed mid-write); returns them.

    Only plain files named by temp_prefix are touched: a live writer's file, a user's file
    and folders are left alone.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder yet: nothing to clean
        return removed
    for entry in entries:
        if not is_dead_writers_temp(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except FileNotFoundError:  # another process cleaned it first
            pass
    return removed


def _mode_for(path: Path) -> int:
    """The permissions `path` keeps (its own if it exists, else what open() would give a new file)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv_atomic(df, path: str | os.PathLike, **kwargs) -> None:
    """pandas DataFrame.to_csv(path, **kwargs), atomically."""
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, **kwargs)


def save_figure_atomic(fig, path: str | os.PathLike, **kwargs) -> None:
    """matplotlib Figure.savefig(path, **kwargs), atomically: a reader never sees half a plot."""
    path = Path(path)
    kwargs.setdefault("format", path.suffix.lstrip(".") or "png")
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, **kwargs)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
