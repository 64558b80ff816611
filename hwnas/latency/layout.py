"""The kernels onnxruntime's CPU graph optimiser leaves in an NB-201 network that a table of layers
does not price: layout conversions, and the ReLUs and Adds it cannot fuse into a convolution.

At graph_optimization=all on x86, onnxruntime's NCHWc pass runs convolutions, pools and the adds
between them in a blocked layout (NCHWc) and inserts a ReorderInput / ReorderOutput node wherever
a tensor crosses to or from an op it cannot block: here the `none` edge (`x * 0`, a Mul). It also
folds a ReLU into the convolution that makes its input (as its activation) and an Add into one of
its convolution operands (as a Sum input), but only where that convolution's output has no other
reader and has not taken an activation yet: whether a cell's ReLUs and node sums cost a pass over
memory of their own depends on how the cell wires its ops. A table times each layer alone, so
none of these kernels is in its sum; the layout calibration ("layout", model.py) fits a cost for
each count.

Counted by replaying the optimiser on the network's graph (same op order as spaces/nb201_net.py's
export): identical ReLUs, Muls, pools and Adds of the same tensors merged (common-subexpression
elimination), a Mul by 0 folded into the convolution that makes node 1 when only `none` edges read
node 1, then layouts and fusions in graph order. Checked against the optimised graphs onnxruntime
1.32 writes (optimized_model_filepath) for 600 random architectures: conversions and Adds equal
for all but 5 (cells whose node 0 only `none` edges read: onnxruntime also folds the first cell's
Mul into the stem, off by at most 6), ReLUs equal but for the head's one ReLU (left out: it is
one kernel on the smallest tensor). tests/test_profile_calibration.py re-checks a sample.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from hwnas.latency.shared_ops import node1_mul_folded
from hwnas.spaces.nb201_net import EDGES, OPS

KERNELS = ("layout conversions", "unfused ReLUs", "unfused Adds")  # the columns of runtime_kernels


class _Graph:
    """The network's nodes in export order, with common subexpressions merged as onnxruntime does."""

    def __init__(self) -> None:
        self.nodes: list[tuple[str, list[int], int]] = []  # (kind, input tensors, output tensor)
        self.readers: list[set[int]] = []  # per tensor: the nodes reading it
        self.memo: dict[tuple, int] = {}

    def tensor(self) -> int:
        self.readers.append(set())
        return len(self.readers) - 1

    def node(self, kind: str, *inputs: int, merge: bool = True) -> int:
        key = (kind, inputs)
        if merge and key in self.memo:  # weight-free and identical: one node
            return self.memo[key]
        out = self.tensor()
        for t in inputs:
            self.readers[t].add(len(self.nodes))
        self.nodes.append((kind, list(inputs), out))
        if merge:
            self.memo[key] = out
        return out

    def conv(self, t: int) -> int:
        return self.node("conv", t, merge=False)  # own weights: never merged


def _network(ops: tuple[str, ...], cells_per_stage: int, stages: int) -> tuple[_Graph, int]:
    g = _Graph()
    fold1 = bool(node1_mul_folded(np.array([OPS.index(o) for o in ops]))[0])

    def edge(op: str, t: int, frm: int) -> int:
        if op == "none":  # a Mul by 0; folded into node 1's conv where only `none` edges read node 1
            return t if fold1 and frm == 1 else g.node("mul", t)
        if op == "skip_connect":
            return t
        if op == "avg_pool_3x3":
            return g.node("pool", t)
        return g.conv(g.node("relu", t))

    x = g.conv(g.tensor())  # stem: conv + BN
    for stage in range(stages):
        if stage:  # residual reduction: avg pool + 1x1 conv shortcut, plus ReLU-conv-BN x2
            x = g.node("add", g.conv(g.node("pool", x)), g.conv(g.node("relu", g.conv(g.node("relu", x)))))
        for _ in range(cells_per_stage):
            nodes = [x]
            k = 0
            for to in range(1, 4):
                acc = None
                for _ in range(to):
                    frm = EDGES[k][1]
                    out = edge(ops[k], nodes[frm], frm)
                    acc = out if acc is None else g.node("add", acc, out)
                    k += 1
                nodes.append(acc)
            x = nodes[3]
    return g, x


@lru_cache(maxsize=None)
def runtime_kernels(ops: tuple[str, ...], cells_per_stage: int = 5, stages: int = 3) -> tuple[int, int, int]:
    """(layout conversions, unfused ReLUs, unfused Adds) in the optimised network of cell genotype
    `ops` (6 names)."""
    g, out = _network(tuple(ops), cells_per_stage, stages)
    plain = [False] * len(g.readers)  # per tensor: plain (NCHW) rather than blocked (NCHWc)
    to_blocked: set[int] = set()
    to_plain: set[int] = set()
    for kind, ins, t in g.nodes:
        if kind in ("conv", "pool"):
            if ins[0] != 0 and plain[ins[0]]:  # tensor 0 is the network input: the stem reads it as it is
                to_blocked.add(ins[0])
        elif kind == "mul":
            plain[t] = True
            if not plain[ins[0]]:
                to_plain.add(ins[0])
        elif kind == "add" and (plain[ins[0]] or plain[ins[1]]):
            plain[t] = True
            to_plain.update(i for i in ins if not plain[i])
        elif kind == "relu":
            plain[t] = plain[ins[0]]
    if not plain[out]:
        to_plain.add(out)  # BN, ReLU and pool of the head keep the layout; Flatten and the classifier are plain
    # Fusions, in graph order: a conv takes one Sum input and then one activation, each only from a
    # tensor no other node reads.
    made_by: dict[int, int] = {t: i for i, (kind, _, t) in enumerate(g.nodes) if kind == "conv"}
    has_sum: set[int] = set()
    has_act: set[int] = set()
    relus = adds = 0
    for kind, ins, t in g.nodes:
        if kind == "add":
            fused = False
            if not plain[t]:
                for operand in (ins[1], ins[0]):
                    c = made_by.get(operand)
                    if c is not None and len(g.readers[operand]) == 1 and c not in has_sum and c not in has_act:
                        has_sum.add(c)
                        made_by[t] = c
                        fused = True
                        break
            adds += not fused
        elif kind == "relu":
            c = made_by.get(ins[0])
            if c is not None and len(g.readers[ins[0]]) == 1 and c not in has_act and not plain[ins[0]]:
                has_act.add(c)
                made_by[t] = c
            else:
                relus += 1
    return len(to_blocked) + len(to_plain), relus, adds


def nchwc_reorders(ops: tuple[str, ...], cells_per_stage: int = 5, stages: int = 3) -> int:
    """ReorderInput + ReorderOutput nodes in the optimised network of cell genotype `ops` (6 names)."""
    return runtime_kernels(tuple(ops), cells_per_stage, stages)[0]


def kernels_of_vectors(vectors: np.ndarray, cells_per_stage: int = 5) -> np.ndarray:
    """(n, 3) runtime_kernels of NB-201 op-id vectors (n, 6)."""
    return np.array([runtime_kernels(tuple(OPS[o] for o in v), cells_per_stage) for v in np.asarray(vectors)],
                    dtype=float).reshape(-1, len(KERNELS))
