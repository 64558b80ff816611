"""`hwnas-export run=<run dir>`: the Pareto models of a search as verified ONNX (+ TensorRT).

See docs/export.md. Configuration: hwnas/conf/export.yaml, schema hwnas/export/config.py.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from hwnas.apps.common import check_overrides
from hwnas.errors import HwnasError, exit_on_user_error
from hwnas.export.config import ExportConfig, store_export_schema

log = logging.getLogger("hwnas.export")
store_export_schema()


@hydra.main(config_path="pkg://hwnas.conf", config_name="export", version_base=None)
@exit_on_user_error
def _hydra_main(cfg: DictConfig) -> None:
    from hwnas.export.pipeline import ExportFailed, run_export
    from hwnas.export.report import summary_lines

    if OmegaConf.is_missing(cfg, "run"):
        raise HwnasError("no run directory given; pass run=<a hwnas-search output directory>")
    typed: ExportConfig = OmegaConf.to_object(cfg)
    out = Path(typed.out) if typed.out else Path(typed.run) / "export"
    try:  # the exact settings are saved beside the results (export_config.yaml)
        manifest = run_export(typed, config_text=OmegaConf.to_yaml(cfg))
    except ExportFailed as exc:  # say which models passed before the error line
        for line in summary_lines(exc.manifest, exc.out):
            log.info("%s", line)
        raise
    for line in summary_lines(manifest, out):
        log.info("%s", line)


def main() -> None:
    check_overrides(sys.argv[1:], (), "export")
    _hydra_main()


if __name__ == "__main__":
    main()
