"""`space=dash`: DASH's search space (Shen, Khodak, Talwalkar 2022; /work/shared/papers.md section 5):
a fixed backbone per input kind (hwnas/spaces/dash_net.py: a Wide-ResNet for images, a 1-D ResNet
for sequences) whose every searchable convolution picks a kernel size from `kernels` and a dilation
from `dilations`.

The kind follows the data: "1d" when the input height is 1 (sequences stored as (N, C, 1, L)), else
"2d". It is a space parameter (`space.dims`: 1 or 2, as in DASH's code), filled from the dataset's
geometry by the config (`${hwnas_input_dims:${dataset.name}}`), so a run's config.json rebuilds the
same network.

An architecture prints as its convolutions' choices in layer order, `k<kernel>d<dilation>` joined
by '-': `k3d1-k5d3-k9d15-...` (n_layers() of them). Categorical vector: one position per
convolution, value kernel_index * len(dilations) + dilation_index.

Contract for the DASH searcher (add, never rename): `kind(dataset)`, `n_layers(dataset)`, `kernels`, `dilations`,
`conv_spec(layer_index, kernel, dilation, dataset)` (the latency table's key of that candidate at
that layer), `layer_shapes(dataset)`, `from_choices([(k, d), ...])`, `choices(arch)`, and
dash_net's `build_backbone` / `fixed_conv` / `ConvFactory`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import ConfigError, HwnasError
from hwnas.spaces import SPACES
from hwnas.spaces.base import Arch, OpSpec, ProfilableSpace
from hwnas.spaces.dash_net import KINDS, conv_slots, out_size

# DASH's code (src/task_configs.py): kernels 3, 5, 7, 9 and dilations 1, 3, 7, 15 for a new task
# and for its 2-D tasks; its 1-D tasks use kernels 3, 7, 11, 15, 19 (space.kernels=[3,7,11,15,19]).
KERNELS = (3, 5, 7, 9)
DILATIONS = (1, 3, 7, 15)
_CHOICE = re.compile(r"^k(\d+)d(\d+)$")


def input_dims(dataset: str) -> int:
    """1 when the dataset's known geometry has height 1 (sequences), else 2 (also for a dataset
    whose geometry comes from its files: npz, image_folder; set space.dims=1 for your own sequences)."""
    from hwnas.datasets.base import known_geometry

    try:
        (_, h, _), _ = known_geometry(str(dataset))
    except ConfigError:
        return 2
    return 1 if h == 1 else 2


@dataclass(frozen=True, order=True)
class DashArch(Arch):
    """Per searchable convolution, in layer order, its (kernel, dilation)."""

    convs: tuple[tuple[int, int], ...]

    def __str__(self) -> str:
        return "-".join(f"k{k}d{d}" for k, d in self.convs)


def _positive_ints(key: str, value, odd: bool = False) -> tuple[int, ...]:
    try:
        items = list(value)
    except TypeError:
        items = None
    if not items or isinstance(value, (str, bytes)) or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in items):
        raise ConfigError(f"space.{key}={value!r} must be a non-empty list of positive integers, e.g. "
                          f"space.{key}=[{','.join(map(str, KERNELS if key == 'kernels' else DILATIONS))}]")
    out = tuple(int(v) for v in items)
    if len(set(out)) != len(out):
        raise ConfigError(f"space.{key}={list(out)} lists a value twice; each choice once")
    if odd and any(v % 2 == 0 for v in out):
        raise ConfigError(f"space.{key}={list(out)}: kernel sizes must be odd ('same' padding keeps the length)")
    return out


class DashSpace(ProfilableSpace):
    name = "dash"
    default_device = "this_machine"  # no public latency tables: measure this machine
    encodings = ("onehot", "categorical", "features")
    params = {"dims": int, "width": int, "depth": int, "kernels": tuple, "dilations": tuple}

    def __init__(self, data_dir=None, dims: int = 2, width: int = 16, depth: int = 1,
                 kernels: Sequence[int] = KERNELS, dilations: Sequence[int] = DILATIONS):
        if isinstance(dims, bool) or dims not in (1, 2):
            raise ConfigError(f"space.dims={dims!r} must be 1 (sequences, input height 1) or 2 (images)")
        for key, v in (("width", width), ("depth", depth)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"space.{key}={v!r} must be a positive integer")
        self.data_dir = data_dir  # unused: no benchmark data; kept for the common constructor
        self.dims = int(dims)
        self._kind = f"{self.dims}d"
        self.width, self.depth = int(width), int(depth)
        self.kernels = _positive_ints("kernels", kernels, odd=True)
        self.dilations = _positive_ints("dilations", dilations)
        self.candidates = tuple((k, d) for k in self.kernels for d in self.dilations)
        self._n = len(conv_slots(self._kind, 1, self.width, self.depth))

    @classmethod
    def from_config(cls, cfg, data_dir=None) -> "DashSpace":
        from collections.abc import Mapping

        get = cfg.get if isinstance(cfg, Mapping) else (lambda k: getattr(cfg, k, None))
        return cls(data_dir=data_dir, **{k: get(k) for k in cls.params if get(k) is not None})

    @classmethod
    def defaults_for(cls, dataset: str) -> dict:
        """Space parameters that follow the dataset: its input dims."""
        return {"dims": input_dims(dataset)}

    # --- the contract of the DASH searcher ------------------------------------------------------
    def n_layers(self, dataset: str | None = None) -> int:
        """Searchable convolutions of the backbone (the kind is the space's; `dataset` is accepted
        for the contract and checked against it when given)."""
        if dataset is not None:
            self._check_dataset(dataset)
        return self._n

    def kind(self, dataset: str | None = None) -> str:
        """"1d" or "2d" (the space's `dims`; checked against `dataset` when given)."""
        if dataset is not None:
            self._check_dataset(dataset)
        return self._kind

    def _check_dataset(self, dataset: str) -> None:
        c, h, w = self.input_shape(dataset)
        self.check_input(h, f"dataset {dataset}")

    def check_input(self, h: int, what: str) -> None:
        if (h == 1) != (self.dims == 1):
            raise ConfigError(f"space dash with space.dims={self.dims} cannot take {what} (input height {h}: "
                              f"{'a sequence' if h == 1 else 'an image'}); set space.dims={1 if h == 1 else 2}")

    def layer_shapes(self, dataset: str) -> list[tuple[int, int, int, int, int]]:
        """Per searchable convolution, (c_in, c_out, h, w, stride) with (h, w) its input size."""
        c, h, w = self.input_shape(dataset)
        self.check_input(h, f"dataset {dataset}")
        out = []
        for slot in conv_slots(self._kind, c, self.width, self.depth):
            out.append((slot.c_in, slot.c_out, h, w, slot.stride))
            h, w = (h, out_size(w, slot.stride)) if self._kind == "1d" else (out_size(h, slot.stride),
                                                                            out_size(w, slot.stride))
        return out

    def conv_spec(self, layer_index: int, kernel: int, dilation: int, dataset: str) -> OpSpec:
        """The latency table's key of candidate (kernel, dilation) at searchable layer `layer_index`."""
        shapes = self.layer_shapes(dataset)
        if not 0 <= layer_index < len(shapes):
            raise HwnasError(f"space dash has searchable layers 0..{len(shapes) - 1}, not {layer_index}")
        c_in, c_out, h, w, stride = shapes[layer_index]
        return OpSpec(f"conv{self._kind}", c_in, c_out, h, w, stride, (("k", int(kernel)), ("d", int(dilation))))

    def from_choices(self, choices: Sequence[tuple[int, int]]) -> DashArch:
        arch = DashArch(tuple((int(k), int(d)) for k, d in choices))
        self._check(arch, str(arch))
        return arch

    def choices(self, arch: DashArch) -> list[tuple[int, int]]:
        return list(arch.convs)

    # --- identity -----------------------------------------------------------------------------
    def _example(self) -> str:
        return str(DashArch(((self.kernels[0], self.dilations[0]),) * self._n))

    def _check(self, arch: DashArch, text: str) -> None:
        if len(arch.convs) != self._n:
            raise HwnasError(f"malformed dash architecture {text!r}: {len(arch.convs)} convolution(s), the "
                             f"{self._kind} backbone (width {self.width}, depth {self.depth}) has {self._n}; "
                             f"example: {self._example()}")
        for i, (k, d) in enumerate(arch.convs):
            if k not in self.kernels:
                raise HwnasError(f"dash architecture {text!r}: kernel {k} at convolution {i}; kernels: "
                                 f"{', '.join(map(str, self.kernels))}")
            if d not in self.dilations:
                raise HwnasError(f"dash architecture {text!r}: dilation {d} at convolution {i}; dilations: "
                                 f"{', '.join(map(str, self.dilations))}")

    def parse(self, text: str) -> DashArch:
        s = str(text).strip()
        convs = []
        for i, part in enumerate(s.split("-") if s else []):
            m = _CHOICE.match(part)
            if not m:
                raise HwnasError(f"malformed dash architecture {s!r}: convolution {i} reads {part!r}, expected "
                                 f"k<kernel>d<dilation> joined by '-'; example: {self._example()}")
            convs.append((int(m.group(1)), int(m.group(2))))
        arch = DashArch(tuple(convs))
        self._check(arch, s)
        return arch

    def cardinalities(self) -> list[int]:
        return [len(self.candidates)] * self._n

    def to_vector(self, arch: DashArch) -> np.ndarray:
        nd = len(self.dilations)
        return np.array([self.kernels.index(k) * nd + self.dilations.index(d) for k, d in arch.convs], dtype=np.int64)

    def from_vector(self, vec: Sequence[int]) -> DashArch:
        v = np.asarray(vec, dtype=float)
        if v.shape != (self._n,):
            raise ValueError(f"dash vectors have {self._n} entries, got shape {v.shape}")
        v = np.clip(np.rint(v), 0, len(self.candidates) - 1).astype(int)
        return DashArch(tuple(self.candidates[i] for i in v))

    def encode(self, arch: DashArch, kind: str = "onehot") -> np.ndarray:
        if kind == "features":
            # per convolution: kernel and receptive field (dilation * (kernel - 1) + 1), scaled to [0, 1]
            kmax, rmax = max(self.kernels), max(d * (k - 1) + 1 for k, d in self.candidates)
            return np.asarray([x for k, d in arch.convs for x in (k / kmax, (d * (k - 1) + 1) / rmax)],
                              dtype=np.float32)
        return super().encode(arch, kind)

    # --- the network ---------------------------------------------------------------------------
    def build(self, arch: DashArch, num_classes: int, in_channels: int = 3, input_size: tuple[int, int] | None = None):
        """The backbone with each searchable convolution the plain conv of its (kernel, dilation)."""
        from hwnas.spaces.dash_net import build_backbone, fixed_conv

        if input_size is not None:
            self.check_input(int(input_size[0]), "this data")
        self._check(arch, str(arch))

        def factory(i: int, c_in: int, c_out: int, stride: int):
            k, d = arch.convs[i]
            return fixed_conv(self._kind, c_in, c_out, k, d, stride)

        return build_backbone(self._kind, in_channels, num_classes, factory, width=self.width, depth=self.depth)

    # --- operations (latency tables) -------------------------------------------------------------
    def _fixed_ops(self, dataset: str) -> list[tuple[int, OpSpec]]:
        """(position, spec) of the fixed operations: each block's shortcut projection, placed after
        its last convolution, and the head at the end."""
        shapes = self.layer_shapes(dataset)
        c, _, _ = self.input_shape(dataset)
        slots = conv_slots(self._kind, c, self.width, self.depth)
        out = []
        for i, slot in enumerate(slots):
            last = i + 1 == len(slots) or slots[i + 1].block != slot.block
            if slot.block < 0 or not last:
                continue
            first = next(j for j, s in enumerate(slots) if s.block == slot.block)
            c_in, _, h, w, _ = shapes[first]
            stride = int(np.prod([s.stride for s in slots if s.block == slot.block]))
            if stride != 1 or c_in != slot.c_out:
                out.append((i, OpSpec(f"proj{self._kind}", c_in, slot.c_out, h, w, stride)))
        c_in, c_out, h, w, stride = shapes[-1]
        h, w = (h, out_size(w, stride)) if self._kind == "1d" else (out_size(h, stride), out_size(w, stride))
        out.append((len(slots) - 1, OpSpec(f"head{self._kind}", c_out, self.num_classes(dataset), h, w)))
        return out

    def ops(self, arch: DashArch, dataset: str = "cifar10") -> list[OpSpec]:
        self._check(arch, str(arch))
        fixed = self._fixed_ops(dataset)
        out = []
        for i, (k, d) in enumerate(arch.convs):
            out.append(self.conv_spec(i, k, d, dataset))
            out += [spec for pos, spec in fixed if pos == i]
        return out

    def distinct_ops(self, dataset: str = "cifar10") -> list[OpSpec]:
        seen: dict[str, OpSpec] = {}
        for i in range(self._n):
            for k, d in self.candidates:
                spec = self.conv_spec(i, k, d, dataset)
                seen.setdefault(spec.key, spec)
        for _, spec in self._fixed_ops(dataset):
            seen.setdefault(spec.key, spec)
        return list(seen.values())

    def op_module(self, spec: OpSpec):
        from hwnas.spaces.dash_net import AsSequence, Head, fixed_conv, make_proj

        kind = spec.op[-2:]
        if kind not in KINDS or spec.op[:-2] not in ("conv", "proj", "head"):
            raise HwnasError(f"space dash has no operation {spec.op!r} (a latency table of another space?)")
        x = dict(spec.extra)
        if spec.op.startswith("conv"):
            module = fixed_conv(kind, spec.c_in, spec.c_out, x["k"], x["d"], spec.stride)
        elif spec.op.startswith("proj"):
            module = make_proj(kind, spec.c_in, spec.c_out, spec.stride)
        else:
            module = Head(kind, spec.c_in, spec.c_out)
        if kind == "1d":  # the profiler feeds (N, C, 1, L), as the network gets it
            module = AsSequence(module, keep_h=not spec.op.startswith("head"))
        return module, (spec.c_in, spec.h, spec.w)


SPACES.register("dash")(DashSpace)
