"""Typed configuration of `hwnas-search`: one dataclass per Hydra config group.

Each group's YAML files in conf/ start from a schema stored here (ConfigStore group
`schema/<group>`), so a typo or a wrong type fails at start-up, before any work.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from hwnas.errors import ConfigError


@dataclass
class SpaceConfig:
    name: str = MISSING
    channels: int = 16  # C of the first stage (NAS-Bench-201: 16)
    cells_per_stage: int = 5  # N (NAS-Bench-201: 5)
    width_mult: float = 1.0  # mbv3: scales every channel count (rounded to multiples of 8)
    # dash (hwnas/spaces/dash.py): input dims (1: sequences, 2: images; conf/space/dash.yaml takes it
    # from the dataset), backbone width and blocks per stage, each convolution's kernel and dilation sets
    dims: int = 2
    width: int = 16
    depth: int = 1
    kernels: list = field(default_factory=lambda: [3, 5, 7, 9])
    dilations: list = field(default_factory=lambda: [1, 3, 7, 15])


@dataclass
class DatasetConfig:
    name: str = MISSING  # cifar10 | cifar100 | ImageNet16-120 | ninapro | darcy ...
    source: str = "nb201"  # nb201: nb201_accuracy.csv; pi5: nb360_pi5.csv's `accuracy`; files: trained on (evaluator=train)
    task: Optional[str] = None  # nb360 task name when source=pi5
    maximize: bool = True  # False for error metrics (darcy: relative error)
    # Training data (evaluator=train): digits, fashion_mnist, image_folder, npz (hwnas/datasets/).
    path: Optional[str] = None  # fashion_mnist: folder of the IDX files; image_folder: folder; npz: file
    val_fraction: float = 0.2  # of the training data, held out as the validation split a search sees
    test_fraction: float = 0.2  # of all data, for sets that ship no test split (digits, image_folder, npz)
    split_seed: int = 0  # the splits stay the same across search seeds, so runs compare


@dataclass
class MetaConfig:
    """device=fewshot: meta-training of its latency predictor (hwnas/meta/fewshot.py, MetaSettings)."""
    n_reference: int = 10
    hidden: int = 128
    layers: int = 3
    steps: int = 500
    tasks_per_step: int = 4
    max_extra: int = 40
    query_size: int = 256
    inner_steps: int = 5
    inner_lr: float = 0.05
    outer_lr: float = 1e-3
    seed: int = 0
    # Benchmark devices never learnt from (the device's own column always is, when it has one).
    exclude: list = field(default_factory=list)


@dataclass
class DeviceConfig:
    name: str = MISSING  # label used in the run dir and summary
    kind: str = MISSING  # benchmark | pi5 | csv | profiled (registered LatencySource kinds)
    column: Optional[str] = None  # benchmark: column of nb201_latency_ms.csv
    framework: Optional[str] = None  # pi5: onnx | litert | torchmobile
    task: Optional[str] = None  # pi5: whose network's latency (default: the dataset's task, else cifar100)
    path: Optional[str] = None  # csv: any CSV with index|arch, latency_ms[, energy_mj]; profiled: table JSON
    # The budget when constraints give none: a fixed one (public devices: about their 30% latency
    # quantile over the space), else a quantile of this device's latencies (measured devices).
    default_latency_ms: Optional[float] = None
    default_latency_quantile: Optional[float] = None
    # profiled: measure the table here first (quick settings) when it does not exist and the
    # space has no benchmark tables (device=this_machine)
    auto_profile: bool = False
    meta: MetaConfig = field(default_factory=MetaConfig)  # fewshot: its meta-training


@dataclass
class EvaluatorConfig:
    name: str = MISSING  # tabular | train
    delay_s: float = 0.0  # sleep per query: simulates a real (training) evaluation's cost
    default_queries: int = 100  # budget.queries when the command line gives none (a query's cost differs)
    # evaluator=train: the proxy schedule every queried architecture is trained with.
    epochs: int = 3
    train_subset: Optional[int] = 2000  # train on the first N (shuffled) training examples; null: all
    image_size: Optional[int] = None  # resize inputs to this square size; null: the data's own
    batch_size: int = 64
    optimizer: str = "adam"  # adam (AdamW) | sgd (momentum 0.9, nesterov)
    lr: float = 0.003  # peak learning rate of a cosine schedule
    weight_decay: float = 5e-4
    threads: int = 0  # torch threads per evaluation; 0: torch's default (a Ray worker: its num_cpus)
    train_device: str = "auto"  # where networks train: auto (a CUDA GPU when one is visible, e.g. a worker with num_gpus), cpu, cuda
    # Parallel evaluation on Ray (hwnas/parallel/): workers > 1 (or ray.address) runs up to
    # `workers` evaluations at once on Ray actors that load the data once.
    workers: int = 1  # 1: evaluations run one by one in the search's own process, no Ray
    num_cpus: float = 1.0  # Ray resources of one worker (fractions allowed)
    num_gpus: float = 0.0
    timeout_s: Optional[float] = None  # an evaluation running longer is stopped and retried
    max_retries: int = 2  # retries of a crashed, raising or timed-out evaluation, then it is recorded as failed


@dataclass
class ConstraintsConfig:
    # feasible iff latency <= the budget: latency_ms, else the latency_quantile of the device's
    # latencies over the space, else the device's default; latency_ms=inf: no latency budget.
    latency_ms: Optional[float] = None
    latency_quantile: Optional[float] = None  # in (0, 1]: a budget relative to the device
    energy_mj: Optional[float] = None  # feasible iff energy <= energy_mj (devices with energy)


@dataclass
class BudgetConfig:
    queries: int = 100  # accuracy queries (latency is free)


@dataclass
class OutputConfig:
    progress: bool = True  # progress bar
    plot: bool = True  # pareto.png


@dataclass
class RayConfig:
    # Where evaluations run when evaluator.workers > 1: null starts a local Ray instance for the
    # run (stopped at its end); auto or host:port joins a running cluster (`ray start --head`).
    address: Optional[str] = None
    num_cpus: Optional[int] = None  # local instance only: CPUs it may use (null: all of this machine's)
    object_store_mb: int = 256  # local instance only: Ray's shared-memory object store
    dashboard: bool = False  # local instance only


@dataclass
class SearchConfig:
    space: SpaceConfig = field(default_factory=SpaceConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    searcher: Any = MISSING  # one of the searcher dataclasses (hwnas/searchers/*)
    constraints: ConstraintsConfig = field(default_factory=ConstraintsConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    seed: int = 0
    data_dir: Optional[str] = None  # else $HWNAS_DATA_DIR
    resume: bool = False  # continue the run dir's history.csv instead of starting over
    output: OutputConfig = field(default_factory=OutputConfig)
    ray: RayConfig = field(default_factory=RayConfig)


def latency_budget(constraints: ConstraintsConfig, device: DeviceConfig,
                   latencies: Optional[Callable[[], Any]] = None) -> Optional[float]:
    """The latency budget in ms (None: no budget) the constraints mean on `device`.

    `latencies()` gives the device's latency of every architecture of the space (an IndexedSource);
    a quantile budget needs it."""
    ms, q = constraints.latency_ms, constraints.latency_quantile
    if ms is not None and q is not None:
        raise ConfigError("give constraints.latency_ms or constraints.latency_quantile, not both")
    if ms is None and q is None:
        ms, q = device.default_latency_ms, device.default_latency_quantile
        key = "device.default_latency_quantile"
    else:
        key = "constraints.latency_quantile"
    if ms is not None:
        if not ms > 0:
            raise ConfigError(f"constraints.latency_ms must be > 0 (inf: no budget), got {ms}")
        return None if math.isinf(ms) else float(ms)
    if q is None:
        return None
    if not 0 < q <= 1:
        raise ConfigError(f"{key} must be in (0, 1], got {q}")
    if latencies is None:
        raise ConfigError(f"{key}={q}: device {device.name!r} does not price the whole space; "
                          f"give constraints.latency_ms instead")
    import numpy as np

    return float(np.quantile(np.asarray(latencies(), dtype=float), q))


def budget_label(latency_ms, latency_quantile, default_ms=None, default_quantile=None) -> str:
    """The budget part of a run dir name (resolver `hwnas_budget`): lat20.0, latq0.3, latinf, latnone."""
    if latency_ms is None and latency_quantile is None:
        latency_ms, latency_quantile = default_ms, default_quantile
    if latency_ms is not None:
        return f"lat{latency_ms}"
    return f"latq{latency_quantile}" if latency_quantile is not None else "latnone"


def table_suffix(space: str = "nb201", dataset: str = "cifar10", width_mult: float | None = None,
                 params: dict | None = None) -> str:
    """What a default table name adds for a space, width and dataset other than NB-201 on CIFAR-10,
    and for the space's other parameters (`params`) where they differ from its defaults."""
    width = f"w{float(width_mult):g}" if space != "nb201" and width_mult not in (None, 1.0) else ""
    rest = non_default_params(space, dataset, params) if params else ""
    return (f"-{space}{width}{rest}" if space != "nb201" else "") + (f"-{dataset.lower()}" if dataset != "cifar10" else "")


def non_default_params(space: str, dataset: str, params: dict) -> str:
    """`-width64-kernels3-7-11` for the parameters of `space` (its class's `params`, but width_mult,
    named apart, and those that follow the dataset) that differ from its constructor's defaults:
    a search at other settings then measures its own table instead of finding one it must refuse."""
    import inspect

    from hwnas.spaces import SPACES

    cls = SPACES.get(space)
    defaults = inspect.signature(cls.__init__).parameters
    follows = cls.defaults_for(dataset)
    out = ""
    for key in cls.params:
        if key == "width_mult" or key in follows or key not in params or key not in defaults:
            continue
        value, default = params[key], defaults[key].default
        if isinstance(value, (list, tuple)) and [int(v) for v in value] != [int(v) for v in default]:
            out += f"-{key}" + "-".join(str(int(v)) for v in value)
        elif not isinstance(value, (list, tuple)) and value is not None and value != default:
            out += f"-{key}{value}"
    return out


def this_machine_table(space: str = "nb201", dataset: str = "cifar10", width_mult: float | None = None,
                       params=None) -> str:
    """The table `hwnas-profile space=<space> dataset=<dataset> width_mult=<w>` writes here with its
    default settings (device=this_machine; the resolver gets the search's space, dataset, width and
    the space's node, whose other non-default parameters are named too)."""
    from hwnas.machine import cpu_slug

    if params is not None and not isinstance(params, dict):  # the resolver passes the space's node
        params = OmegaConf.to_container(params, resolve=True)
    return f"cpu-ort-{cpu_slug()}-t1-b1{table_suffix(str(space), str(dataset), width_mult, params)}"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("hwnas_budget", budget_label, replace=True)
    OmegaConf.register_new_resolver("hwnas_this_machine", this_machine_table, replace=True)
    OmegaConf.register_new_resolver("hwnas_input_dims", input_dims, replace=True)


def input_dims(dataset: str) -> int:
    """1 for a dataset of sequences (input height 1), else 2 (space=dash's `dims`)."""
    from hwnas.datasets.base import input_dims as dims

    return dims(str(dataset))


def store_schemas() -> None:
    cs = ConfigStore.instance()
    cs.store(name="search_schema", node=SearchConfig)
    cs.store(group="schema/space", name="base", node=SpaceConfig)
    cs.store(group="schema/dataset", name="base", node=DatasetConfig)
    cs.store(group="schema/device", name="base", node=DeviceConfig)
    cs.store(group="schema/evaluator", name="base", node=EvaluatorConfig)


def store_searcher_schema(name: str, node: type) -> None:
    ConfigStore.instance().store(group="schema/searcher", name=name, node=node)
