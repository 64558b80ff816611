"""The export folder, replaced whole: a killed export leaves the previous one as it was.

A new export is written into a staging folder beside `out` (`.<out>.hwnas-<pid>-staging`)
and swapped in at the end: `out` -> `.<out>.hwnas-<pid>-old`, staging -> `out`, then the
old one is deleted. A kill at any moment leaves either the previous export, whole, with
its manifest telling the truth, or the new one; `recover` (run at the start of every export)
finishes what a killed export left: it puts back an `out` that was moved aside but not
replaced, and deletes dead exports' staging and backup folders and temporary files.

Files in `out` that hwnas did not write (not named by the old manifest, not one of the
export's own files or models) are kept: hard-linked (or copied) into the new folder
before the swap.

Where `out` cannot be swapped (a mount point, or a folder holding the current directory
or the run itself), the staging folder goes inside `out` and the files are moved in one by
one, the old manifest removed first and the new one written last: a kill then can leave
orphan files, but never a manifest that lists a file it does not describe.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from hwnas.errors import HwnasError
from hwnas.io import clean_stale_temps, is_dead_writers_temp, temp_owner, temp_prefix

MANIFEST = "manifest.json"
OWN_FILES = (MANIFEST, "report.md", "export_front.png", "export_config.yaml", "trt_timing.cache")
FAILED = "failed"


def staging_path(out: Path, in_place: bool) -> Path:
    return (out if in_place else out.parent) / (temp_prefix(out.name) + "staging")


def _backup_path(out: Path) -> Path:
    return out.parent / (temp_prefix(out.name) + "old")


def must_stage_inside(out: Path, run_dir: Path) -> bool:
    """Whether `out` must be filled in place rather than swapped (see the module docstring)."""
    out = out.resolve()
    keep = (Path.cwd().resolve(), run_dir.resolve())
    return os.path.ismount(out) or any(p == out or out in p.parents for p in keep)


def _dead_leftovers(folder: Path, name: str) -> list[tuple[Path, str]]:
    """(path, kind) of the staging/backup folders a dead export of `name` left in `folder`."""
    found = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return found
    for entry in entries:
        if not is_dead_writers_temp(entry.name) or not entry.name.startswith(
                temp_prefix(name, temp_owner(entry.name))):
            continue
        kind = entry.name.rsplit("-", 1)[-1]
        if kind in ("staging", "old") and entry.is_dir() and not entry.is_symlink():
            found.append((entry, kind))
    return found


def recover(out: Path) -> list[str]:
    """Finish or undo what killed exports into `out` left behind; returns what was done."""
    done = []
    # Backups first: a kill between the two renames left no `out`; the previous export returns.
    for path, kind in _dead_leftovers(out.parent, out.name):
        if kind == "old" and not out.exists():
            os.rename(path, out)
            done.append(f"restored {out} from {path.name}")
    for folder in (out.parent, out):
        for path, _kind in _dead_leftovers(folder, out.name):
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path}")
    for folder in (out, out / FAILED):
        done += [f"removed {p}" for p in clean_stale_temps(folder)]
    return done


def begin(out: Path, in_place: bool) -> Path:
    """Create the staging folder (proving the place writable) before any work."""
    if out.exists() and not out.is_dir():
        raise HwnasError(f"out={out} is a file, not a folder; pass out=<a folder>")
    _refuse_foreign_namesakes(out)
    staging = staging_path(out, in_place)
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise HwnasError(f"cannot write to output directory {out}: {exc.strerror or exc}; "
                         f"pass out=<a writable directory>") from None
    cache = out / "trt_timing.cache"
    if cache.is_file():  # TensorRT's timing cache speeds up the next export's engine builds
        _link_or_copy(str(cache), str(staging / cache.name))
    return staging




def _refuse_foreign_namesakes(out: Path) -> None:
    """The export's own file names (manifest.json, report.md, ...) in a folder no hwnas export
    made are a user's files: refuse rather than replace them."""
    if not out.is_dir() or _hwnas_manifest(out) is not None:
        return
    clash = sorted(name for name in OWN_FILES if (out / name).exists() or (out / name).is_symlink())
    if clash:
        raise HwnasError(f"out={out} holds {', '.join(clash)}, which no hwnas export wrote, and an export would "
                         f"replace them; pass out=<another folder>")


def abandon(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def _hwnas_manifest(out: Path) -> dict | None:
    """The manifest an earlier hwnas export left in `out`; None when there is none or it is not one."""
    try:
        old = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(old, dict) and "schema_version" in old and isinstance(old.get("models"), list)
    return old if ok else None


def listed_files(out: Path) -> set[str]:
    """Paths (relative to `out`) of the models and engines the manifest in `out` lists."""
    old = _hwnas_manifest(out)
    files = set()
    for m in old["models"] if old else []:  # no or unreadable manifest: nothing known
        if not isinstance(m, dict):
            continue
        trt = m.get("tensorrt") if isinstance(m.get("tensorrt"), dict) else {}
        engines = trt.get("engines") or []
        for rel in [m.get("file"), *(e.get("file") for e in engines if isinstance(e, dict))]:
            if isinstance(rel, str):
                files.add(Path(rel).as_posix())
    return files


def _is_ours(rel: str, listed: set[str], model_names: set[str]) -> bool:
    """Whether `rel` (a file path relative to `out`) is one hwnas writes in an export folder."""
    name = rel.rsplit("/", 1)[-1]
    if rel in OWN_FILES or rel in listed or temp_owner(name) is not None:
        return True
    # A model file of this export's name, even unlisted (an earlier export killed before its
    # manifest), must not pass for this one's result.
    stem = name.split(".", 1)[0]
    return stem in model_names and name.endswith((".onnx", ".engine")) and rel.count("/") <= 1


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry_foreign(out: Path, staging: Path, model_names: set[str]) -> None:
    """Give the new folder the files of `out` that are not hwnas's (a user's notes, say)."""
    listed = listed_files(out)
    for entry in out.iterdir():
        rel = entry.name
        if entry.is_dir() and not entry.is_symlink():
            if rel == FAILED:
                for sub in entry.iterdir():
                    sub_rel = f"{FAILED}/{sub.name}"
                    if not _is_ours(sub_rel, listed, model_names):
                        (staging / FAILED).mkdir(exist_ok=True)
                        _carry(sub, staging / sub_rel)
            elif temp_owner(rel) is None:
                _carry(entry, staging / rel)
        elif not _is_ours(rel, listed, model_names):
            _carry(entry, staging / rel)


def _carry(src: Path, dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        return  # the new export's own file wins
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dst))


def publish(staging: Path, out: Path, model_names: set[str], in_place: bool) -> None:
    """Make the complete export in `staging` the content of `out` (see the module docstring)."""
    if in_place:
        _publish_in_place(staging, out, model_names)
        return
    if not out.exists():
        os.rename(staging, out)
        return
    _carry_foreign(out, staging, model_names)
    backup = _backup_path(out)
    try:
        os.rename(out, backup)
    except OSError as exc:
        abandon(staging)
        raise HwnasError(f"cannot replace {out} with the new export ({exc.strerror or exc}); the previous "
                         f"export is untouched; pass out=<another folder>") from None
    try:
        os.rename(staging, out)
    finally:
        if not out.exists():  # interrupted between the renames (Ctrl-C): the previous export returns
            os.rename(backup, out)
    shutil.rmtree(backup, ignore_errors=True)


def _publish_in_place(staging: Path, out: Path, model_names: set[str]) -> None:
    listed = listed_files(out)
    # From here until the new manifest lands, the folder claims nothing.
    (out / MANIFEST).unlink(missing_ok=True)
    for folder in (out, out / FAILED):
        for path in (folder.iterdir() if folder.is_dir() else []):
            rel = path.relative_to(out).as_posix()
            if path.is_file() and temp_owner(path.name) is None and _is_ours(rel, listed, model_names):
                path.unlink()
    new = sorted(p for p in staging.rglob("*") if p.is_file() and p.name != MANIFEST)
    for path in new:
        dest = out / path.relative_to(staging)
        dest.parent.mkdir(exist_ok=True)
        os.replace(path, dest)
    if (staging / MANIFEST).is_file():
        os.replace(staging / MANIFEST, out / MANIFEST)  # last: the commit point
    abandon(staging)
    failed = out / FAILED
    if failed.is_dir() and not any(failed.iterdir()):
        failed.rmdir()
