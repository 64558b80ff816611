"""Shared fixtures. The data directory defaults to ../shared/benchmarks beside the repo."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HWNAS_DATA_DIR", str(REPO.parent / "shared" / "benchmarks"))
# Keep torch and onnxruntime from oversubscribing CI's two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _user_home(tmp_path_factory, monkeypatch):
    """What tests measure (tables, device configs) goes to a temporary user folder, never ~/.local."""
    monkeypatch.setenv("HWNAS_HOME", str(tmp_path_factory.mktemp("hwnas_home")))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["HWNAS_DATA_DIR"]).resolve()
    if not (path / "nb201_accuracy.csv").is_file():
        pytest.fail(f"benchmark data not found in {path}; set HWNAS_DATA_DIR (see README 'Data')")
    return path


@pytest.fixture(scope="session")
def nb201(data_dir):
    from hwnas.spaces import NB201Space

    return NB201Space(data_dir=data_dir)


def make_search_cfg(searcher: str = "nsga2", device: str = "raspi4", dataset: str = "cifar10",
                    latency_ms=20.0, queries: int = 40, seed: int = 0, plot: bool = False, **searcher_kw):
    """A SearchConfig as Hydra would compose it, without Hydra (fast library-level tests)."""
    import hwnas.searchers  # noqa: F401
    from hwnas.config import (
        BudgetConfig,
        ConstraintsConfig,
        DatasetConfig,
        DeviceConfig,
        EvaluatorConfig,
        OutputConfig,
        SearchConfig,
        SpaceConfig,
    )
    from hwnas.searchers import SEARCHERS

    if device.startswith("pi5_"):
        dev = DeviceConfig(name=device, kind="pi5", framework=device[4:])
    else:
        dev = DeviceConfig(name=device, kind="benchmark", column=device)
    ds = (DatasetConfig(name=dataset, source="pi5", task=dataset, maximize=dataset != "darcy")
          if dataset in ("ninapro", "darcy") else DatasetConfig(name=dataset))
    return SearchConfig(
        space=SpaceConfig(name="nb201"), dataset=ds, device=dev, evaluator=EvaluatorConfig(name="tabular"),
        searcher=SEARCHERS.get(searcher).config(**searcher_kw),
        constraints=ConstraintsConfig(latency_ms=latency_ms), budget=BudgetConfig(queries=queries),
        seed=seed, output=OutputConfig(progress=False, plot=plot),
    )


def run_search_dir(tmp_path, name: str, **kw):
    """(summary, run dir) of a library-level search with make_search_cfg(**kw), written to tmp_path/name."""
    from hwnas.search import search

    out = tmp_path / name
    summary = search(make_search_cfg(**kw), out, progress=False, log=lambda *a: None)
    return summary, out


def read_rows(path) -> list[dict]:
    """Rows of a CSV file (history.csv, pareto.csv) as dicts of strings."""
    import csv

    with open(path) as fh:
        return list(csv.DictReader(fh))
