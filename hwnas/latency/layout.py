"""How many layout conversions onnxruntime's CPU graph optimiser inserts into an NB-201 network.

At graph_optimization=all on x86, onnxruntime's NCHWc pass runs convolutions, pools and the adds
between them in a blocked layout (NCHWc) and inserts a ReorderInput / ReorderOutput node wherever
a tensor crosses to or from an op it cannot block: here the `none` edge (`x * 0`, a Mul). Those
copies cost time no per-op timing sees, and their number depends on how the cell wires its ops:
on this repository's CPU table it explains most of what a linear calibration misses (calibration
"layout", latency_model.py). Counted by replaying the pass on the cell graph (same op order as
spaces/nb201_net.py's export), including onnxruntime's merging of identical ReLUs, Muls and pools
of one tensor and its folding of a Mul by a constant into the only Conv feeding it. Checked
against the optimised graphs onnxruntime 1.32 writes (optimized_model_filepath): equal counts for
all but 8 of 448 random architectures, off by at most 15 there (rare chains of `none` from node 1).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from hwnas.spaces.nb201_net import EDGES, OPS

CONV_OPS = ("nor_conv_1x1", "nor_conv_3x3")


@lru_cache(maxsize=None)
def nchwc_reorders(ops: tuple[str, ...], cells_per_stage: int = 5, stages: int = 3) -> int:
    """ReorderInput + ReorderOutput nodes in the optimised network of cell genotype `ops` (6 names)."""
    layout: list[str] = []  # per tensor: 'c' blocked (NCHWc) or 'p' plain (NCHW)
    to_blocked: set[int] = set()
    to_plain: set[int] = set()
    relu_of: dict[int, int] = {}
    mul_of: dict[int, int] = {}
    pool_of: dict[int, int] = {}

    def new(kind: str) -> int:
        layout.append(kind)
        return len(layout) - 1

    def blocked_op(t: int) -> int:  # conv / pool: needs a blocked input, gives a blocked output
        if layout[t] == "p":
            to_blocked.add(t)
        return new("c")

    def relu(t: int) -> int:  # follows its input's layout; identical ReLUs of one tensor are merged
        if t not in relu_of:
            relu_of[t] = new(layout[t])
        return relu_of[t]

    def mul(t: int) -> int:  # `none`: plain only
        if t not in mul_of:
            if layout[t] == "c":
                to_plain.add(t)
            mul_of[t] = new("p")
        return mul_of[t]

    def add(a: int, b: int) -> int:
        if layout[a] == "c" and layout[b] == "c":
            return new("c")
        for t in (a, b):
            if layout[t] == "c":
                to_plain.add(t)
        return new("p")

    def edge(op: str, t: int) -> int:
        if op == "none":
            return mul(t)
        if op == "skip_connect":
            return t
        if op == "avg_pool_3x3":
            if t not in pool_of:
                pool_of[t] = blocked_op(t)
            return pool_of[t]
        return blocked_op(relu(t))

    # A conv node 1 read only by `none` edges: the Mul by 0 is folded into that conv.
    fold1 = ops[0] in CONV_OPS and ops[2] == "none" and ops[4] == "none"
    x = new("c")  # stem: conv + BN
    for stage in range(stages):
        if stage:  # residual reduction: ReLU-conv-BN x2, and avg pool + 1x1 conv shortcut
            x = add(blocked_op(blocked_op(x)), blocked_op(relu(blocked_op(relu(x)))))
        for _ in range(cells_per_stage):
            nodes = [x]
            k = 0
            for to in range(1, 4):
                acc = None
                for _ in range(to):
                    frm = EDGES[k][1]
                    out = new("c") if fold1 and frm == 1 else edge(ops[k], nodes[frm])
                    acc = out if acc is None else add(acc, out)
                    k += 1
                nodes.append(acc)
            x = nodes[3]
    head = new(layout[relu(new(layout[x]))])  # BN, ReLU, global pool keep x's layout
    if layout[head] == "c":
        to_plain.add(head)  # Flatten + classifier are plain
    return len(to_blocked) + len(to_plain)


def reorders_of_vectors(vectors: np.ndarray, cells_per_stage: int = 5) -> np.ndarray:
    """(n,) reorder counts of NB-201 op-id vectors (n, 6)."""
    return np.array([nchwc_reorders(tuple(OPS[o] for o in v), cells_per_stage) for v in np.asarray(vectors)],
                    dtype=float)
