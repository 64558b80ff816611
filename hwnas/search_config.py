"""A SearchConfig built in code, as Hydra would compose it from conf/, without Hydra.

For library users, benchmarks and tests that run many searches in one process (Hydra's
composition is for the command line).
"""
from __future__ import annotations

from typing import Optional

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

# darcy's metric is a relative error (lower is better); both are HW-NAS-Bench-360 tasks.
NB360_TASKS = ("ninapro", "darcy")


def make_search_cfg(searcher: str = "nsga2", device: str = "raspi4", dataset: str = "cifar10",
                    latency_ms: Optional[float] = 20.0, queries: int = 40, seed: int = 0,
                    plot: bool = False, **searcher_kw) -> SearchConfig:
    """A search on a public benchmark device: `device` is a column of nb201_latency_ms.csv or
    `pi5_<framework>`; `searcher_kw` are the searcher's options (e.g. pop_size=30)."""
    import hwnas.searchers  # noqa: F401  (registers every searcher)
    from hwnas.searchers import SEARCHERS

    if device.startswith("pi5_"):
        dev = DeviceConfig(name=device, kind="pi5", framework=device[4:])
    else:
        dev = DeviceConfig(name=device, kind="benchmark", column=device)
    ds = (DatasetConfig(name=dataset, source="pi5", task=dataset, maximize=dataset != "darcy")
          if dataset in NB360_TASKS else DatasetConfig(name=dataset))
    return SearchConfig(
        space=SpaceConfig(name="nb201"), dataset=ds, device=dev, evaluator=EvaluatorConfig(name="tabular"),
        searcher=SEARCHERS.get(searcher).config(**searcher_kw),
        constraints=ConstraintsConfig(latency_ms=latency_ms), budget=BudgetConfig(queries=queries),
        seed=seed, output=OutputConfig(progress=False, plot=plot),
    )
