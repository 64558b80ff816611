"""NAS-Bench-201: a 4-node cell, 6 edges, 5 ops per edge = 15,625 architectures.

Architectures print as the benchmark's own string and their `index` is the benchmark's index,
read from the data directory (the order is the benchmark's, not computable from the string).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.spaces import SPACES
from hwnas.spaces.base import Arch, OpSpec, ProfilableSpace, TabularSpace
from hwnas.spaces.nb201_cell import EDGES, OPS

N_EDGES = len(EDGES)
N_OPS = len(OPS)
_OP_ID = {name: i for i, name in enumerate(OPS)}
_NODE = re.compile(r"^\|(.+)\|$")


@dataclass(frozen=True, order=True)
class NB201Arch(Arch):
    """Op ids of the six edges, in arch-string order: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2)."""

    ops: tuple[int, ...]

    @property
    def op_names(self) -> tuple[str, ...]:
        return tuple(OPS[o] for o in self.ops)

    @property
    def code(self) -> int:
        """Base-5 number of the op ids: a dense 0..15624 key (not the benchmark index)."""
        return sum(o * N_OPS**i for i, o in enumerate(self.ops))

    def is_connected(self) -> bool:
        """Whether any path of non-`none` edges links the input to the output node."""
        reach = {0}
        for (to, frm), op in zip(EDGES, self.ops):
            if op != 0 and frm in reach:
                reach.add(to)
        return 3 in reach

    def __str__(self) -> str:
        names = self.op_names
        parts, k = [], 0
        for to in range(1, 4):
            parts.append("|" + "|".join(f"{names[k + j]}~{j}" for j in range(to)) + "|")
            k += to
        return "+".join(parts)


def parse_nb201(text: str) -> NB201Arch:
    """Parse `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`; errors say exactly what is wrong."""
    s = str(text).strip()
    nodes = s.split("+")
    if len(nodes) != 3:
        raise HwnasError(
            f"malformed NAS-Bench-201 architecture {s!r}: expected 3 nodes joined by '+', got "
            f"{len(nodes)}; example: |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
        )
    ops: list[int] = []
    for to, node in enumerate(nodes, start=1):
        m = _NODE.match(node)
        edges = m.group(1).split("|") if m else []
        if len(edges) != to:
            raise HwnasError(f"malformed NAS-Bench-201 architecture {s!r}: node {to} must be "
                             f"'|op~0|...|op~{to - 1}|' with {to} edge(s), got {node!r}")
        for frm, edge in enumerate(edges):
            name, sep, src = edge.partition("~")
            if not sep or src != str(frm):
                raise HwnasError(f"malformed NAS-Bench-201 architecture {s!r}: edge {edge!r} of node "
                                 f"{to} must read 'op~{frm}'")
            if name not in _OP_ID:
                raise HwnasError(f"unknown op {name!r} in NAS-Bench-201 architecture {s!r}; valid ops: "
                                 f"{', '.join(OPS)}")
            ops.append(_OP_ID[name])
    return NB201Arch(tuple(ops))


class NB201Space(TabularSpace, ProfilableSpace):
    name = "nb201"
    encodings = ("onehot", "categorical", "adjacency")
    params = {"channels": int, "cells_per_stage": int}
    # per_op calibration classes: the edge ops but skip_connect (costs ~0; hwnas/latency/model.py)
    calibration_classes = ("none", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

    def __init__(self, data_dir: str | Path | None = None, channels: int = 16, cells_per_stage: int = 5):
        self.data_dir = data_dir
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self._code_to_index: np.ndarray | None = None
        self._index_to_code: np.ndarray | None = None

    # --- identity ---------------------------------------------------------------------
    def parse(self, text: str) -> NB201Arch:
        return parse_nb201(text)

    def cardinalities(self) -> list[int]:
        return [N_OPS] * N_EDGES

    def to_vector(self, arch: NB201Arch) -> np.ndarray:
        return np.asarray(arch.ops, dtype=np.int64)

    def from_vector(self, vec: Sequence[int]) -> NB201Arch:
        v = np.clip(np.rint(np.asarray(vec, dtype=float)), 0, N_OPS - 1).astype(int)
        if v.shape != (N_EDGES,):
            raise ValueError(f"NAS-Bench-201 vectors have {N_EDGES} entries, got shape {v.shape}")
        return NB201Arch(tuple(int(x) for x in v))

    def is_degenerate(self, arch: NB201Arch) -> bool:
        # A cell with no input-output path computes a constant: chance accuracy, wasted query.
        return not arch.is_connected()

    def from_code(self, code: int) -> NB201Arch:
        return NB201Arch(tuple((int(code) // N_OPS**i) % N_OPS for i in range(N_EDGES)))

    def enumerate(self) -> Iterator[NB201Arch]:
        """All 15,625 architectures in benchmark index order."""
        for code in self._maps()[1]:
            yield self.from_code(int(code))

    # --- benchmark index (from the data directory) --------------------------------------
    def _maps(self) -> tuple[np.ndarray, np.ndarray]:
        if self._code_to_index is None:
            from hwnas.data.nb201 import ACCURACY_FILE, benchmark_arch_strings
            from hwnas.data.paths import data_file

            strings = benchmark_arch_strings(self.data_dir)
            codes = np.empty(len(strings), dtype=np.int64)
            for i, s in enumerate(strings):
                try:
                    codes[i] = parse_nb201(s).code
                except HwnasError as exc:
                    raise HwnasError(f"{data_file(self.data_dir, ACCURACY_FILE)}, line {i + 2}: {exc}") from None
            c2i = np.full(self.size(), -1, dtype=np.int64)
            c2i[codes] = np.arange(len(codes))
            if (c2i < 0).any():
                raise HwnasError(f"{ACCURACY_FILE}: does not list every NAS-Bench-201 architecture once")
            self._code_to_index, self._index_to_code = c2i, codes
        return self._code_to_index, self._index_to_code

    def index(self, arch: NB201Arch) -> int:
        return int(self._maps()[0][arch.code])

    def indices(self, archs: Sequence[NB201Arch]) -> np.ndarray:
        c2i = self._maps()[0]
        return c2i[np.fromiter((a.code for a in archs), dtype=np.int64, count=len(archs))]

    def index_codes(self) -> np.ndarray:
        """The base-5 code (NB201Arch.code) of every architecture, in benchmark index order."""
        return self._maps()[1]

    def from_index(self, index: int) -> NB201Arch:
        codes = self._maps()[1]
        if not 0 <= int(index) < len(codes):
            raise HwnasError(f"NAS-Bench-201 index {index} out of range 0..{len(codes) - 1}")
        return self.from_code(int(codes[int(index)]))

    # --- encodings ----------------------------------------------------------------------
    def graph(self, arch: NB201Arch) -> tuple[np.ndarray, np.ndarray]:
        """Ops-on-nodes DAG for graph models: 8 nodes (input, 6 edge ops, output).

        Returns (adjacency 8 x 8, node type ids 8) with types 0=input, 1..5=OPS, 6=output.
        """
        n = N_EDGES + 2
        adj = np.zeros((n, n), dtype=np.float32)
        types = np.zeros(n, dtype=np.int64)
        types[-1] = N_OPS + 1
        for k, ((to, frm), op) in enumerate(zip(EDGES, arch.ops)):
            types[k + 1] = op + 1
            # The op node reads what node `frm` computes: the input, or every op into `frm`.
            sources = [0] if frm == 0 else [j + 1 for j, (t, _) in enumerate(EDGES) if t == frm]
            for s in sources:
                adj[s, k + 1] = 1.0
            if to == 3:
                adj[k + 1, n - 1] = 1.0
        return adj, types

    def encode(self, arch: NB201Arch, kind: str = "onehot") -> np.ndarray:
        if kind == "adjacency":
            adj, types = self.graph(arch)
            onehot = np.eye(N_OPS + 2, dtype=np.float32)[types]
            return np.concatenate([adj[np.triu_indices(len(types), 1)], onehot.ravel()])
        return super().encode(arch, kind)

    # --- real networks --------------------------------------------------------------------
    def build(self, arch: NB201Arch, num_classes: int, in_channels: int = 3, input_size=None):
        from hwnas.spaces.nb201_net import (
            NB201Network,  # torch: only when a network is built
        )

        return NB201Network(arch.op_names, num_classes, self.channels, self.cells_per_stage, in_channels)

    # --- operations (latency tables) ---------------------------------------------------------
    # ops(arch) lists one OpSpec per layer the network runs, in execution order, repeats included
    # (5 cells per stage run the same edge op 5 times). `none` is listed and timed: the network
    # computes it (x * 0, a real Mul node in the ONNX graph), and listing it keeps every
    # architecture's op count equal, so per-call overhead is a constant that calibration absorbs.
    # `add` is each node's sum of its incoming edges (node 2: 1 add, node 3: 2 adds per cell).
    def ops(self, arch: NB201Arch, dataset: str = "cifar10") -> list[OpSpec]:
        fixed_head, fixed_tail, per_stage_fixed, edge_ops = self._op_parts(dataset)
        out = list(fixed_head)
        for stage, (reduction, adds) in enumerate(per_stage_fixed):
            out.extend(reduction)
            for _ in range(self.cells_per_stage):
                for name in arch.op_names:
                    out.append(edge_ops[stage][name])
                out.extend(adds)
        out.extend(fixed_tail)
        return out

    def ops_decomposition(self, dataset: str = "cifar10") -> tuple[list[OpSpec], dict[str, list[OpSpec]]]:
        """(fixed, per_edge): ops(arch) is, as a multiset, fixed + per_edge[op] for each of its 6 edges.

        Lets a latency model price all 15,625 architectures with one lookup per edge op.
        """
        fixed_head, fixed_tail, per_stage_fixed, edge_ops = self._op_parts(dataset)
        fixed = list(fixed_head)
        for reduction, adds in per_stage_fixed:
            fixed.extend(reduction)
            fixed.extend(adds * self.cells_per_stage)
        fixed.extend(fixed_tail)
        per_edge = {name: [edge_ops[s][name] for s in range(3) for _ in range(self.cells_per_stage)] for name in OPS}
        return fixed, per_edge

    def distinct_ops(self, dataset: str = "cifar10") -> list[OpSpec]:
        """Every distinct OpSpec any architecture of the space runs on `dataset`, in a fixed order."""
        fixed, per_edge = self.ops_decomposition(dataset)
        seen: dict[str, OpSpec] = {}
        for spec in [*fixed, *(s for name in OPS for s in per_edge[name])]:
            seen.setdefault(spec.key, spec)
        return list(seen.values())

    def op_module(self, spec: OpSpec):
        """(torch module, input shape (C, H, W)) running `spec` alone, built from the network's own classes."""
        from hwnas.spaces.nb201_net import op_module

        return op_module(spec.op, spec.c_in, spec.c_out), (spec.c_in, spec.h, spec.w)

    def _op_parts(self, dataset: str):
        (c_img, h, w), classes = self.input_shape(dataset), self.num_classes(dataset)
        c = self.channels
        head = [OpSpec("stem", c_img, c, h, w, 1)]
        stages, edge_ops = [], []
        for stage in range(3):
            reduction = []
            if stage > 0:
                reduction = [OpSpec("reduction", c, 2 * c, h, w, 2)]
                c, h, w = 2 * c, (h - 1) // 2 + 1, (w - 1) // 2 + 1  # conv 3x3, stride 2, pad 1
            stages.append((reduction, [OpSpec("add", c, c, h, w, 1)] * 3))
            edge_ops.append({name: OpSpec(name, c, c, h, w, 1) for name in OPS})
        tail = [OpSpec("head", c, classes, h, w, 1)]
        return head, tail, stages, edge_ops


SPACES.register("nb201")(NB201Space)
