"""`hwnas-search`: search a space under hardware constraints (Hydra app, conf/search.yaml)."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import hwnas.searchers  # noqa: F401  (registers searchers and their config schemas)
from hwnas.apps.common import CONF_DIR, check_group_choices
from hwnas.config import store_schemas
from hwnas.errors import exit_on_user_error
from hwnas.search import search

GROUPS = ("space", "dataset", "device", "evaluator", "searcher")
store_schemas()


@exit_on_user_error
def _run(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    search(OmegaConf.to_object(cfg), run_dir)


@hydra.main(config_path=str(CONF_DIR), config_name="search", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    _run(cfg)


def main() -> None:
    check_group_choices(sys.argv[1:], GROUPS)
    _hydra_main()


if __name__ == "__main__":
    main()
