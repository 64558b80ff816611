"""`hwnas-export run=<run dir>`: the Pareto models of a search as verified ONNX (+ TensorRT).

See README.md, "Job 3: hwnas-export". Configuration: hwnas/conf/export.yaml, schema hwnas/export/config.py.
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
    from hwnas.export.pipeline import run_export
    from hwnas.io import write_text_atomic

    if OmegaConf.is_missing(cfg, "run"):
        raise HwnasError("no run directory given; pass run=<a hwnas-search output directory>")
    typed: ExportConfig = OmegaConf.to_object(cfg)
    try:
        manifest = run_export(typed)
    finally:
        out = Path(typed.out) if typed.out else Path(typed.run) / "export"
        if (out / "manifest.json").is_file():  # keep the exact settings beside the results
            write_text_atomic(out / "export_config.yaml", OmegaConf.to_yaml(cfg))
    counts = manifest["counts"]
    log.info("exported %d model(s) to %s (manifest.json, report.md)", counts["ok"], out)
    for m in manifest["models"]:
        lat = m["measured_latency_ms"]
        log.info("  %s  %s  max abs err %.2e  ORT CPU %.3f ms  TensorRT: %s", m["name"], m["arch"],
                 m["verification"]["max_abs_err"], lat["median"], m["tensorrt"]["status"])


def main() -> None:
    check_overrides(sys.argv[1:], (), "export")
    _hydra_main()


if __name__ == "__main__":
    main()
