"""MobileNetV3 macro space as in Once-for-All (Cai et al., ICLR 2020): 5 searchable stages of
2-4 blocks, each block a kernel of 3/5/7 and an expand ratio of 3/4/6 (7371^5 ~ 2.2e19 networks).

Fixed: stem conv 3x3 s2 (16 ch, hard-swish), a depthwise-separable first block (16 ch), stage
widths 24, 40, 80, 112, 160, strides 2, 2, 2, 1, 2, squeeze-excite in the stages of width 40,
112 and 160, hard-swish from the stage of width 80 on, and MobileNetV3's head. `width_mult`
scales every width but the 1280 features (rounded to multiples of 8).

Small inputs: a stride-2 step (the stem, a stage's first block) keeps stride 2 only while the
smaller side of its input is at least 4, so striding never shrinks a map below 2x2 (digits
8x8 ends at 2x2, CIFAR 32x32 at 2x2, 224x224 at 7x7). Decided from the input size alone.

An architecture prints as its 5 stages joined by '|', each the '-'-joined blocks `k<kernel>e<expand>`:
    k3e4-k5e6|k3e3-k7e4-k5e6|k5e4-k5e4|k7e3-k7e3-k7e3-k7e3|k3e6-k3e6
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.spaces import SPACES
from hwnas.spaces.base import Arch, OpSpec, ProfilableSpace

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
MAX_DEPTH = max(DEPTHS)
WIDTHS = (24, 40, 80, 112, 160)
STRIDES = (2, 2, 2, 1, 2)
SE = (False, True, False, True, True)
HSWISH = (False, False, True, True, True)
N_STAGES = len(WIDTHS)
STEM_WIDTH = 16
HEAD_EXPAND = 6  # final 1x1 expand: 6 x the last stage's width (960 at width_mult 1)
FEATURES = 1280
_BLOCK = re.compile(r"^k(\d+)e(\d+)$")
EXAMPLE = "k3e4-k5e6|k3e3-k7e4-k5e6|k5e4-k5e4|k7e3-k7e3-k7e3-k7e3|k3e6-k3e6"


@dataclass(frozen=True, order=True)
class MBV3Arch(Arch):
    """Per stage, its blocks' (kernel, expand); the depth is the number of blocks (only blocks
    that run are stored, so equal networks are equal archs)."""

    stages: tuple[tuple[tuple[int, int], ...], ...]

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.stages)

    def __str__(self) -> str:
        return "|".join("-".join(f"k{k}e{e}" for k, e in stage) for stage in self.stages)


def parse_mbv3(text: str) -> MBV3Arch:
    s = str(text).strip()
    parts = s.split("|")
    if len(parts) != N_STAGES:
        raise HwnasError(f"malformed mbv3 architecture {s!r}: expected {N_STAGES} stages joined by '|', got "
                         f"{len(parts)}; example: {EXAMPLE}")
    stages = []
    for i, part in enumerate(parts, start=1):
        blocks = part.split("-") if part else []
        if len(blocks) not in DEPTHS:
            raise HwnasError(f"malformed mbv3 architecture {s!r}: stage {i} has {len(blocks)} block(s), a stage has "
                             f"{DEPTHS[0]}-{DEPTHS[-1]}; example: {EXAMPLE}")
        out = []
        for b in blocks:
            m = _BLOCK.match(b)
            if not m:
                raise HwnasError(f"malformed mbv3 architecture {s!r}: block {b!r} of stage {i} must read "
                                 f"k<kernel>e<expand>, e.g. k5e4")
            k, e = int(m.group(1)), int(m.group(2))
            if k not in KERNELS:
                raise HwnasError(f"mbv3 architecture {s!r}: kernel {k} in block {b!r} of stage {i}; kernels: "
                                 f"{', '.join(map(str, KERNELS))}")
            if e not in EXPANDS:
                raise HwnasError(f"mbv3 architecture {s!r}: expand ratio {e} in block {b!r} of stage {i}; expand "
                                 f"ratios: {', '.join(map(str, EXPANDS))}")
            out.append((k, e))
        stages.append(tuple(out))
    return MBV3Arch(tuple(stages))


def strided(stride: int, h: int, w: int) -> int:
    """The stride a stride-2 step keeps on an (h, w) input: 2 while the smaller side is >= 4."""
    return stride if stride == 1 or min(h, w) >= 4 else 1


def _out(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # conv with padding kernel // 2


class MBV3Space(ProfilableSpace):
    name = "mbv3"
    default_device = "this_machine"  # no public latency tables: measure this machine
    encodings = ("onehot", "categorical", "features")
    params = {"width_mult": float}

    def __init__(self, data_dir=None, width_mult: float = 1.0):
        if not width_mult > 0:
            raise HwnasError(f"space.width_mult must be > 0, got {width_mult}")
        self.data_dir = data_dir  # unused: no benchmark data; kept for the common constructor
        self.width_mult = float(width_mult)
        from hwnas.spaces.mbv3_net import make_divisible

        self.stem_width = make_divisible(STEM_WIDTH * self.width_mult)
        self.widths = tuple(make_divisible(c * self.width_mult) for c in WIDTHS)
        self.head_width = make_divisible(WIDTHS[-1] * HEAD_EXPAND * self.width_mult)
        self.features = max(FEATURES, make_divisible(FEATURES * self.width_mult))

    # --- identity ---------------------------------------------------------------------------
    def parse(self, text: str) -> MBV3Arch:
        return parse_mbv3(text)

    def cardinalities(self) -> list[int]:
        # depths, then per stage and slot: kernel, expand (slots beyond the depth are ignored)
        return [len(DEPTHS)] * N_STAGES + [len(KERNELS), len(EXPANDS)] * (N_STAGES * MAX_DEPTH)

    def size(self) -> int:
        per_stage = sum((len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS)
        return per_stage ** N_STAGES  # a Python int: beyond int64

    def _slot(self, stage: int, j: int) -> int:
        return N_STAGES + 2 * (stage * MAX_DEPTH + j)

    def to_vector(self, arch: MBV3Arch) -> np.ndarray:
        vec = np.zeros(len(self.cardinalities()), dtype=np.int64)  # unused slots: 0 (canonical)
        for s, blocks in enumerate(arch.stages):
            vec[s] = DEPTHS.index(len(blocks))
            for j, (k, e) in enumerate(blocks):
                vec[self._slot(s, j)] = KERNELS.index(k)
                vec[self._slot(s, j) + 1] = EXPANDS.index(e)
        return vec

    def from_vector(self, vec: Sequence[int]) -> MBV3Arch:
        v = np.asarray(vec, dtype=float)
        if v.shape != (len(self.cardinalities()),):
            raise ValueError(f"mbv3 vectors have {len(self.cardinalities())} entries, got shape {v.shape}")
        v = np.clip(np.rint(v), 0, np.array(self.cardinalities()) - 1).astype(int)
        stages = []
        for s in range(N_STAGES):
            depth = DEPTHS[v[s]]
            stages.append(tuple((KERNELS[v[self._slot(s, j)]], EXPANDS[v[self._slot(s, j) + 1]]) for j in range(depth)))
        return MBV3Arch(tuple(stages))

    def _active(self, arch: MBV3Arch) -> list[int]:
        """Vector positions that change the network: the depths and the slots of blocks that run."""
        pos = list(range(N_STAGES))
        for s, blocks in enumerate(arch.stages):
            for j in range(len(blocks)):
                pos += [self._slot(s, j), self._slot(s, j) + 1]
        return pos

    # --- variation ----------------------------------------------------------------------------
    def mutate(self, arch: MBV3Arch, rng: np.random.Generator) -> MBV3Arch:
        """Change one position that runs (a depth, or a running block's kernel or expand); blocks a
        deeper stage adds are drawn at random (not the canonical filler)."""
        vec = self.to_vector(arch)
        cards = self.cardinalities()
        pos = self._active(arch)[int(rng.integers(len(self._active(arch))))]
        vec[pos] = [v for v in range(cards[pos]) if v != vec[pos]][int(rng.integers(cards[pos] - 1))]
        if pos < N_STAGES:
            for j in range(len(arch.stages[pos]), DEPTHS[vec[pos]]):
                vec[self._slot(pos, j)] = rng.integers(len(KERNELS))
                vec[self._slot(pos, j) + 1] = rng.integers(len(EXPANDS))
        return self.from_vector(vec)

    def crossover(self, a: MBV3Arch, b: MBV3Arch, rng: np.random.Generator) -> MBV3Arch:
        """Per stage the depth of either parent; each block from a parent that runs it (either, when both)."""
        stages = []
        for sa, sb in zip(a.stages, b.stages):
            depth = len(sa) if rng.random() < 0.5 else len(sb)
            blocks = []
            for j in range(depth):
                have = [p[j] for p in (sa, sb) if j < len(p)]
                blocks.append(have[int(rng.integers(len(have)))] if len(have) > 1 else have[0])
            stages.append(tuple(blocks))
        return MBV3Arch(tuple(stages))

    # --- encodings ------------------------------------------------------------------------------
    def encode(self, arch: MBV3Arch, kind: str = "onehot") -> np.ndarray:
        if kind == "features":
            # per stage depth / 4; per slot: runs, kernel / 7, expand / 6 (zeros where it does not run)
            out = [len(b) / MAX_DEPTH for b in arch.stages]
            for blocks in arch.stages:
                for j in range(MAX_DEPTH):
                    k, e = blocks[j] if j < len(blocks) else (0, 0)
                    out += [float(j < len(blocks)), k / max(KERNELS), e / max(EXPANDS)]
            return np.asarray(out, dtype=np.float32)
        return super().encode(arch, kind)

    # --- the network ------------------------------------------------------------------------------
    def layer_plan(self, arch: MBV3Arch, input_shape: tuple[int, int, int], num_classes: int):
        """[(OpSpec, layer kind, constructor args)] in execution order: one plan gives the
        network (mbv3_net.MBV3Network), its op list (ops) and each op's module (op_module)."""
        c, h, w = input_shape
        plan = []
        s = strided(2, h, w)
        plan.append((OpSpec("stem", c, self.stem_width, h, w, s), "stem", (c, self.stem_width, s)))
        c, h, w = self.stem_width, _out(h, s), _out(w, s)
        plan.append(self._block(c, c, h, w, 3, 1, 1, False, False))
        for stage, blocks in enumerate(arch.stages):
            for j, (k, e) in enumerate(blocks):
                stride = strided(STRIDES[stage], h, w) if j == 0 else 1
                c_out = self.widths[stage]
                plan.append(self._block(c, c_out, h, w, k, e, stride, SE[stage], HSWISH[stage]))
                c, h, w = c_out, _out(h, stride), _out(w, stride)
        plan.append((OpSpec("head", c, num_classes, h, w, 1, (("mid", self.head_width), ("feat", self.features))),
                     "head", (c, self.head_width, self.features, num_classes)))
        return plan

    @staticmethod
    def _block(c_in, c_out, h, w, k, e, stride, se, hswish):
        spec = OpSpec("mbconv", c_in, c_out, h, w, stride, (("k", k), ("e", e), ("se", int(se)), ("hs", int(hswish))))
        return spec, "mbconv", (c_in, c_out, k, e, stride, bool(se), bool(hswish))

    def build(self, arch: MBV3Arch, num_classes: int, in_channels: int = 3, input_size: tuple[int, int] = (32, 32)):
        """The torch network. Strides follow the input size (module docstring): pass the (H, W) it
        will see as `input_size`; any H, W >= 8 runs either way (global pooling)."""
        from hwnas.spaces.mbv3_net import MBV3Network

        plan = self.layer_plan(arch, (in_channels, *input_size), num_classes)
        return MBV3Network([(kind, args) for _, kind, args in plan])

    def build_for(self, arch: MBV3Arch, dataset: str):
        c, h, w = self.input_shape(dataset)
        return self.build(arch, self.num_classes(dataset), c, (h, w))

    # --- operations (latency tables) ------------------------------------------------------------
    def ops(self, arch: MBV3Arch, dataset: str = "cifar10") -> list[OpSpec]:
        return [spec for spec, _, _ in self.layer_plan(arch, self.input_shape(dataset), self.num_classes(dataset))]

    def distinct_ops(self, dataset: str = "cifar10") -> list[OpSpec]:
        # Every stage at depth 4 with each (kernel, expand) covers every block shape: a stage's
        # first block and its later blocks each see one input shape whatever the other stages are.
        seen: dict[str, OpSpec] = {}
        for k in KERNELS:
            for e in EXPANDS:
                arch = MBV3Arch(tuple(((k, e),) * MAX_DEPTH for _ in range(N_STAGES)))
                for spec in self.ops(arch, dataset):
                    seen.setdefault(spec.key, spec)
        return list(seen.values())

    def op_module(self, spec: OpSpec):
        from hwnas.spaces.mbv3_net import make_layer

        x = dict(spec.extra)
        if spec.op == "stem":
            return make_layer("stem", (spec.c_in, spec.c_out, spec.stride)), (spec.c_in, spec.h, spec.w)
        if spec.op == "mbconv":
            args = (spec.c_in, spec.c_out, x["k"], x["e"], spec.stride, bool(x["se"]), bool(x["hs"]))
            return make_layer("mbconv", args), (spec.c_in, spec.h, spec.w)
        if spec.op == "head":
            return make_layer("head", (spec.c_in, x["mid"], x["feat"], spec.c_out)), (spec.c_in, spec.h, spec.w)
        raise HwnasError(f"space mbv3 has no operation {spec.op!r} (a latency table of another space?)")

    calibration_classes = ("k3", "k5", "k7")

    def op_class(self, spec: OpSpec) -> str | None:
        # per_op calibration: searchable blocks by depthwise kernel (the fixed first block is a
        # constant every network runs: the offset absorbs it).
        x = dict(spec.extra)
        if spec.op != "mbconv" or x.get("e") == 1:
            return None
        return f"k{x['k']}"


SPACES.register("mbv3")(MBV3Space)
