"""What every Hydra app shares: where the configs are, the user's config folder on Hydra's search
path, and checking the command line before Hydra runs (one clear line instead of Hydra's advice).

The configs are package data (hwnas/conf, `pkg://hwnas.conf`), so a wheel works as a checkout
does; device configs written by `hwnas-profile` live in the user folder (hwnas/userdirs.py),
which every app adds to Hydra's search path so `device=<name>` finds them.
"""
from __future__ import annotations

import difflib
import itertools
import sys
from pathlib import Path
from typing import Iterable, Sequence

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
CONF_MODULE = "hwnas.conf"
# Hydra flags that take the next argument as their value (not an override)
_FLAGS_WITH_VALUE = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                     "--shell-completion", "-sc", "--cfg", "-c", "--package", "-p", "--info", "-i"}
_CONFIG_SOURCE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd"}
_MAX_COMBOS = 16  # group-choice combinations whose keys are checked (a sweep's product can be large)


def fail(msg: str) -> None:
    print(f"hwnas: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def user_conf_dirs() -> list[Path]:
    """Config roots of the user (device configs written by hwnas-profile), when they exist."""
    from hwnas.userdirs import user_device_conf_dir

    d = user_device_conf_dir()
    return [d] if d.is_dir() else []


def with_user_searchpath(argv: Sequence[str]) -> list[str]:
    """argv plus `hydra.searchpath=[file://<user conf dir>]` (unless the user sets the search path)."""
    argv = list(argv)
    dirs = user_conf_dirs()
    if dirs and not any(a.lstrip("+~").startswith("hydra.searchpath") for a in argv):
        argv.append("hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]")
    return argv


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The names a config group offers, shipped and the user's."""
    names = {p.stem for p in (conf_dir / group).glob("*.yaml")}
    for d in user_conf_dirs():
        names |= {p.stem for p in (d / group).glob("*.yaml")}
    return sorted(names)


def _overrides(argv: Sequence[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in _FLAGS_WITH_VALUE:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def _candidates(override) -> list[str] | None:
    """The values an override may take (a sweep's every value), or None when only Hydra knows
    (glob(), interval())."""
    from hydra.core.override_parser.types import Glob

    value = override.value()
    if isinstance(value, Glob):
        return None
    if override.is_sweep_override():
        try:
            return list(override.sweep_string_iterator())
        except Exception:  # interval() and other non-discrete sweeps
            return None
    return [override.get_value_element_as_str()]


def _keys(node, prefix: str = "") -> Iterable[str]:
    from omegaconf import DictConfig

    for k in node.keys():
        key = f"{prefix}{k}"
        yield key
        child = node._get_node(k)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            yield from _keys(child, key + ".")


def _has_key(cfg, key: str) -> bool:
    from omegaconf import DictConfig

    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig):
            return True  # inside a list or a value: Hydra checks it
        if part not in node.keys():
            return False
        node = node._get_node(part)
        if node._is_missing() or node._is_none():
            return True
    return True


def check_overrides(argv: Sequence[str], groups: Sequence[str], config_name: str,
                    conf_module: str = CONF_MODULE, conf_dir: Path = CONF_DIR) -> None:
    """Before Hydra runs: every group choice known (sweeps included) and every key spelled right.

    Overrides are parsed by Hydra's own parser, so each of its forms works (a,b  choice()
    range()  glob()  +key  ~key  key@pkg); a mistake is one line and exit 2.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    args = _overrides(argv)
    if not args:
        return
    if any(a in _CONFIG_SOURCE_FLAGS or a.split("=")[0] in _CONFIG_SOURCE_FLAGS for a in argv) or any(
            a.lstrip("+~").startswith("hydra.searchpath") for a in args):
        return  # configs from elsewhere (-cd, -cp, -cn, hydra.searchpath): Hydra itself checks them
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as exc:
        fail(str(exc).splitlines()[0].rstrip("."))
    choices: dict[str, list[str]] = {}
    plain = []
    for o in parsed:
        key = o.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue
        if key in groups and o.package is None:
            if o.is_delete():
                continue
            values = _candidates(o)
            if values is None:
                continue
            valid = group_options(key, conf_dir)
            for v in values:
                if v not in valid:
                    fail(f"unknown {key} {v!r}; valid {key}s: {', '.join(valid)}")
            choices[key] = values
        elif not (o.is_add() or o.is_force_add() or o.is_delete()) and o.package is None and "/" not in key:
            plain.append(key)
    if plain:
        _check_keys(plain, choices, config_name, conf_module)


def _check_keys(keys: list[str], choices: dict[str, list[str]], config_name: str, conf_module: str) -> None:
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    groups = sorted(choices)
    combos = list(itertools.islice(itertools.product(*(choices[g] for g in groups)), _MAX_COMBOS))
    searchpath = [o for o in with_user_searchpath([]) if o.startswith("hydra.searchpath")]
    for combo in combos:
        overrides = [f"{g}={v}" for g, v in zip(groups, combo)] + searchpath
        try:
            with initialize_config_module(conf_module, version_base=None):
                cfg = compose(config_name, overrides=overrides)
        except HydraException:
            return  # Hydra reports what is wrong with this composition itself
        for key in keys:
            if not _has_key(cfg, key):
                known = list(_keys(cfg))
                near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"; did you mean {near[0]!r}?" if near else "; `+key=value` adds a new key"
                where = " with " + " ".join(overrides[:len(groups)]) if groups else ""
                fail(f"unknown key {key!r}{where}{hint}")


HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")  # what Hydra writes into <run>/.hydra
HYDRA_LOG = "search.log"  # Hydra's job log, when its file logging is on


def discard_rejected_run_dir(run_dir: Path, stop_at: Path | None = None) -> None:
    """Undo what Hydra wrote for a rejected job: its .hydra/*.yaml and an empty job log, then the
    run dir and its parents up to `stop_at` (default: the working directory) while they are empty.

    Nothing is done where a run's results are (e.g. one to resume). Only those files are
    removed, and folders only by rmdir (so only when empty): a user's own files or folders, the
    working directory and its ancestors are never touched.
    """
    from hwnas.rundir import RUN_FILES

    stop = (stop_at or Path.cwd()).resolve()
    cwd = Path.cwd().resolve()
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir() or any((run_dir / name).exists() for name in RUN_FILES):
        return
    hydra_dir = run_dir / ".hydra"
    for name in HYDRA_FILES:
        (hydra_dir / name).unlink(missing_ok=True)
    log = run_dir / HYDRA_LOG
    if log.is_file() and not log.is_symlink() and log.stat().st_size == 0:
        log.unlink()
    for folder in (hydra_dir, run_dir, *run_dir.parents):
        if folder == cwd or folder in cwd.parents or (folder not in (hydra_dir, run_dir) and stop not in folder.parents):
            break
        if folder == hydra_dir and not folder.exists():
            continue  # hydra.output_subdir=null
        try:
            folder.rmdir()  # only when empty
        except OSError:
            break
