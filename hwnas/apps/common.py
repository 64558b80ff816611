"""What every Hydra app shares: where conf/ is, and checking group choices before Hydra runs."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def check_group_choices(argv: Sequence[str], groups: Sequence[str], conf_dir: Path = CONF_DIR) -> None:
    """`group=name` for an unknown name: one line listing the valid names, exit 2.

    Hydra's own message for this is buried in its search-path dump; users deserve better.
    """
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in groups or not value:
            continue
        valid = sorted(p.stem for p in (conf_dir / key).glob("*.yaml"))
        if value not in valid:
            print(f"hwnas: error: unknown {key} {value!r}; valid {key}s: {', '.join(valid)}", file=sys.stderr)
            raise SystemExit(2)
