"""`hwnas-search`: search a space under hardware constraints (Hydra app, hwnas/conf/search.yaml).

Imports nothing heavy at start-up (no torch): `--help` and a mistyped option answer at once;
the search itself is imported when a job runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import hwnas.searchers  # noqa: F401  (stores the searchers' config schemas; imports no searcher)
from hwnas.apps.common import CONF_DIR, check_overrides, discard_rejected_run_dir, with_user_searchpath
from hwnas.apps.sweep import ERROR_FILE
from hwnas.config import register_resolvers, store_schemas
from hwnas.errors import HwnasError

GROUPS = ("space", "dataset", "device", "evaluator", "searcher")
store_schemas()
register_resolvers()


def _run(cfg: DictConfig) -> None:
    from hwnas.search import search

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    try:
        search(OmegaConf.to_object(cfg), run_dir)
    except HwnasError as exc:
        print(f"hwnas: error: {exc}", file=sys.stderr, flush=True)
        if hc.mode == RunMode.MULTIRUN:  # the sweep goes on; its summary table shows this job failed
            from hwnas.io import write_text_atomic

            write_text_atomic(run_dir / ERROR_FILE, f"{exc}\n")
            return
        discard_rejected_run_dir(run_dir)
        raise SystemExit(2) from None


@hydra.main(config_path=f"pkg://{'hwnas.conf'}", config_name="search", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    _run(cfg)


def with_space_default_device(args: list[str]) -> list[str]:
    """`args` plus device=<the space's default> when they choose one space whose networks have no
    public latency tables (mbv3) and name no device: search.yaml's default (raspi4) is NB-201's."""
    spaces = [a.split("=", 1)[1] for a in args if a.startswith("space=")]
    if len(spaces) != 1 or "," in spaces[0] or any(a.lstrip("+~").startswith("device") for a in args):
        return args
    from hwnas.spaces import SPACES

    if spaces[0] not in SPACES:
        return args  # Hydra names the valid spaces
    default = SPACES.get(spaces[0]).default_device
    return args + [f"device={default}"] if default else args


def main() -> None:
    check_overrides(sys.argv[1:], GROUPS, "search", conf_dir=CONF_DIR)
    sys.argv[1:] = with_space_default_device(with_user_searchpath(sys.argv[1:]))
    _hydra_main()


if __name__ == "__main__":
    main()
