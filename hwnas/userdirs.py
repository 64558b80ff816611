"""Where hwnas keeps what a user measures or builds: latency tables, device configs, caches.

Never inside the installed package (a wheel or a read-only site-packages must keep working).
`HWNAS_HOME` overrides the root; otherwise the XDG folders are used:
  tables and device configs  $XDG_DATA_HOME/hwnas   (~/.local/share/hwnas)
  caches (pretrained models)  $XDG_CACHE_HOME/hwnas  (~/.cache/hwnas)
"""
from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "HWNAS_HOME"


def _root(xdg_var: str, default: str) -> Path:
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser().resolve()
    base = os.environ.get(xdg_var) or str(Path.home() / default)
    return Path(base).expanduser().resolve() / "hwnas"


def user_data_dir() -> Path:
    """Root of what a user measures (latency tables, device configs)."""
    return _root("XDG_DATA_HOME", ".local/share")


def user_tables_dir() -> Path:
    return user_data_dir() / "latency_tables"


def user_device_conf_dir() -> Path:
    """Device configs written by `hwnas-profile`; Hydra searches it (`device=<name>`)."""
    return user_data_dir() / "conf"


def user_cache_dir() -> Path:
    """Derived, rebuildable things (pretrained generators, meta-trained models)."""
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser().resolve() / "cache" if home else _root("XDG_CACHE_HOME", ".cache")
