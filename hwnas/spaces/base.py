"""The search-space protocol every space implements; searchers see nothing else.

A space is a finite or infinite set of architectures that all share one *categorical
vector* view: ``cardinalities()[i]`` choices at position i. pymoo, the evolutionary and the
generative searchers work on that view, so a second space plugs in without touching them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Hashable, Iterator, Mapping, Sequence

import numpy as np


class Arch(Hashable):
    """An architecture: immutable, hashable, with a canonical string (``str(arch)``)."""


@dataclass(frozen=True)
class OpSpec:
    """One layer an architecture runs, keyed by type and shape (used by latency tables)."""

    op: str
    c_in: int
    c_out: int
    h: int
    w: int
    stride: int = 1
    extra: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> str:
        tail = "".join(f"-{k}{v}" for k, v in self.extra)
        return f"{self.op}-cin{self.c_in}-cout{self.c_out}-h{self.h}-w{self.w}-s{self.stride}{tail}"


class SearchSpace(ABC):
    """Abstract search space. Subclasses register themselves in ``hwnas.spaces.SPACES``."""

    name: str = "abstract"
    encodings: tuple[str, ...] = ()
    #: the device a search uses when the command line names none: a space with no public latency
    #: tables is priced on this machine (hwnas/conf/device/this_machine.yaml)
    default_device: str | None = None
    #: constructor parameters read from the `space` config group (SpaceConfig fields), with their type
    params: ClassVar[dict[str, type]] = {}

    @classmethod
    def from_config(cls, cfg: Any, data_dir=None) -> "SearchSpace":
        """The space a `space` config (SpaceConfig, or its dict in a run's config.json) describes:
        its `params`, checked (one ConfigError naming the bad key), and the benchmark data dir."""
        from hwnas.errors import ConfigError

        get = cfg.get if isinstance(cfg, Mapping) else (lambda k: getattr(cfg, k, None))
        kwargs = {}
        for key, typ in cls.params.items():
            value = get(key)
            ok = not isinstance(value, bool) and isinstance(value, (int, float) if typ is float else typ)
            if not ok or not value > 0:
                kind = "positive integer" if typ is int else "positive number"
                raise ConfigError(f"space.{key}={value!r} must be a {kind} (space {cls.name})")
            kwargs[key] = typ(value)
        return cls(data_dir=data_dir, **kwargs)

    def param_values(self) -> dict:
        """This space's `params` and their values (what a latency table records it was profiled for)."""
        return {k: getattr(self, k) for k in type(self).params}

    @classmethod
    def defaults_for(cls, dataset: str) -> dict:
        """Space parameters that follow the dataset (hwnas-profile builds the space with them):
        none here; dash's input dims."""
        return {}

    # --- identity -------------------------------------------------------------------
    @abstractmethod
    def parse(self, text: str) -> Arch:
        """Canonical string -> Arch; raises HwnasError naming what is malformed."""

    @abstractmethod
    def cardinalities(self) -> list[int]:
        """Number of choices at each position of the categorical vector."""

    @abstractmethod
    def to_vector(self, arch: Arch) -> np.ndarray:
        """Arch -> int vector (len = len(cardinalities()))."""

    @abstractmethod
    def from_vector(self, vec: Sequence[int]) -> Arch:
        """Int vector -> Arch (values are clipped into range)."""

    def size(self) -> int:
        return int(np.prod(self.cardinalities(), dtype=np.int64))

    def is_degenerate(self, arch: Arch) -> bool:
        """True for architectures known useless without training (e.g. no input-output path)."""
        return False

    def index(self, arch: Arch) -> int | None:
        """The benchmark's own index of `arch`; None in a space without one (see TabularSpace)."""
        return None

    # --- variation ------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch:
        return self.from_vector([int(rng.integers(c)) for c in self.cardinalities()])

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change one position to a different value."""
        vec = self.to_vector(arch).copy()
        cards = self.cardinalities()
        pos = int(rng.integers(len(cards)))
        choices = [v for v in range(cards[pos]) if v != vec[pos]]
        vec[pos] = choices[int(rng.integers(len(choices)))]
        return self.from_vector(vec)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover of the categorical vectors."""
        va, vb = self.to_vector(a), self.to_vector(b)
        mask = rng.random(len(va)) < 0.5
        return self.from_vector(np.where(mask, va, vb))

    # --- encodings for surrogates -----------------------------------------------------
    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        if kind == "categorical":
            return self.to_vector(arch).astype(np.float32)
        if kind == "onehot":
            vec = self.to_vector(arch)
            parts = [np.eye(c, dtype=np.float32)[v] for c, v in zip(self.cardinalities(), vec)]
            return np.concatenate(parts)
        raise ValueError(f"unknown encoding {kind!r}; valid: {', '.join(self.encodings)}")

    # --- real networks ----------------------------------------------------------------
    @abstractmethod
    def build(self, arch: Arch, num_classes: int, in_channels: int = 3, input_size: tuple[int, int] | None = None):
        """A torch.nn.Module implementing `arch` for inputs of `in_channels` x H x W. `input_size`
        (H, W) lets a space whose layers depend on it (mbv3's strides) build the network that
        input will run; networks run on any H, W >= 8 either way."""

    def input_shape(self, dataset: str) -> tuple[int, int, int]:
        """(C, H, W) of one input for a dataset name with a known geometry (hwnas.datasets)."""
        from hwnas.datasets.base import known_geometry

        return known_geometry(dataset)[0]

    def num_classes(self, dataset: str) -> int:
        from hwnas.datasets.base import known_geometry

        return known_geometry(dataset)[1]

    def build_for(self, arch: Arch, dataset: str):
        """The network of `arch` for a dataset name with a known geometry (what latency tables time)."""
        c, h, w = self.input_shape(dataset)
        return self.build(arch, self.num_classes(dataset), c, (h, w))


def sample_distinct(space: SearchSpace, n: int, seed: int) -> list:
    """`n` distinct architectures drawn uniformly with a seeded generator (same seed, same list);
    the architectures hwnas-profile times, and the sample a non-tabular space's latency quantile
    is estimated on."""
    rng = np.random.default_rng([seed, 201])
    seen: dict[str, object] = {}
    while len(seen) < n:
        a = space.sample(rng)
        seen.setdefault(str(a), a)
    return list(seen.values())


class TabularSpace(SearchSpace):
    """Capability: a finite space whose every architecture has a benchmark index, so tables
    (accuracy, latency) hold one value per index and a search can be scored against the truth."""

    @abstractmethod
    def enumerate(self) -> Iterator[Arch]:
        """Every architecture, in benchmark index order."""

    @abstractmethod
    def index(self, arch: Arch) -> int:
        """The benchmark's own index of `arch`."""

    @abstractmethod
    def from_index(self, index: int) -> Arch:
        """The architecture at a benchmark index (HwnasError when out of range)."""

    def indices(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([self.index(a) for a in archs], dtype=np.int64)


class ProfilableSpace(SearchSpace):
    """Capability: a space whose networks decompose into operations that a latency table times
    one by one (hwnas-profile) and a LatencyModel sums: `ops`, `distinct_ops`, `op_module`, and the
    op classes a per_op calibration fits a factor for."""

    #: op classes of the per_op calibration (op_class names); empty: per_op is the linear fit
    calibration_classes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def ops(self, arch: Arch, dataset: str = "cifar10") -> list[OpSpec]:
        """The layers `arch` runs on `dataset`, in execution order, keyed by type and shape."""

    @abstractmethod
    def distinct_ops(self, dataset: str = "cifar10") -> list[OpSpec]:
        """Every distinct OpSpec any architecture of the space runs on `dataset`, in a fixed order."""

    @abstractmethod
    def op_module(self, spec: OpSpec):
        """(torch module, input shape (C, H, W)) running `spec` alone, built from the network's own classes."""

    def op_class(self, spec: OpSpec) -> str | None:
        """The calibration class of `spec` (one of calibration_classes), or None."""
        return spec.op if spec.op in self.calibration_classes else None


def is_profilable(space: SearchSpace) -> bool:
    return isinstance(space, ProfilableSpace)


def require_profilable(space: SearchSpace, what: str) -> ProfilableSpace:
    """`space` as a ProfilableSpace, or one ConfigError saying that `what` needs one."""
    if not isinstance(space, ProfilableSpace):
        from hwnas.errors import ConfigError

        raise ConfigError(f"{what} needs a space that lists its operations (a profilable space: nb201, mbv3, dash); "
                          f"space {space.name!r} does not")
    return space


def is_tabular(space: SearchSpace) -> bool:
    return isinstance(space, TabularSpace)


def require_tabular(space: SearchSpace, what: str) -> TabularSpace:
    """`space` as a TabularSpace, or one ConfigError saying that `what` needs one."""
    if not isinstance(space, TabularSpace):
        from hwnas.errors import ConfigError

        raise ConfigError(f"{what} needs a space with a benchmark table (nb201); space {space.name!r} has none")
    return space
