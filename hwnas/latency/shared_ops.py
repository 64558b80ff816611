"""Operations the runtime computes once although the network lists them on several edges.

In an NB-201 cell two edges leaving the same node with an `avg_pool_3x3` (no weights) are one
pool in the exported ONNX graph, and two `none` edges (`x * 0`) one Mul: the exporter merges
identical weight-free nodes on one tensor (onnxruntime's common-subexpression elimination would
too); convolutions have their own weights and are never merged. onnxruntime's optimiser also
folds a Mul by 0 into the convolution making node 1 when only `none` edges read node 1. A table
sum that prices every edge counts those ops twice: on a 2-core Intel Xeon that predicted a
network ~5% too slow per merged pool and ~3% per merged Mul (docs/latency.md, item 9), the
largest error left after the layout calibration. The latency model subtracts them (`distinct`
table sum). Checked against exported and optimised graphs (tests/test_shared_ops.py).
"""
from __future__ import annotations

import numpy as np

from hwnas.spaces.nb201_cell import EDGES, OPS

MERGED_OPS = ("none", "avg_pool_3x3")  # weight-free edge ops: identical on one tensor, so merged
SUM_RULES = ("all", "distinct")  # every listed op | the ops the runtime runs after merging
_FROM: dict[int, list[int]] = {}
for _e, (_to, _frm) in enumerate(EDGES):
    _FROM.setdefault(_frm, []).append(_e)


SKIP, NONE = OPS.index("skip_connect"), OPS.index("none")
CONVS = [OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3")]


def node1_mul_folded(vectors: np.ndarray) -> np.ndarray:
    """(n,) bool: onnxruntime folds node 1's Mul by 0 into the convolution making node 1 (edge 1<-0
    a conv, and only `none` edges reading node 1). Also used by layout.py's replay."""
    v = np.asarray(vectors).reshape(-1, len(EDGES))
    return np.isin(v[:, 0], CONVS) & np.all(v[:, _FROM[1]] == NONE, axis=1)


def merged_edges(vectors: np.ndarray, fold: bool = True) -> np.ndarray:
    """(n, len(OPS)): per architecture (op-id vectors, (n, 6)) and op, how many of its edges run no
    op of their own: an edge on the same tensor with the same weight-free op already runs it (node 1
    is node 0's tensor when edge 1<-0 is skip_connect), or, with `fold` (onnxruntime's optimiser),
    a `none` edge whose Mul by 0 is folded into the convolution that makes node 1 (when only `none`
    edges read node 1)."""
    v = np.asarray(vectors)
    out = np.zeros((len(v), len(OPS)))
    alias = v[:, 0] == SKIP
    for name in MERGED_OPS:
        o = OPS.index(name)
        hit = {node: (v[:, edges] == o).sum(axis=1) for node, edges in _FROM.items()}
        for node, n in hit.items():
            if node == 1:
                n = np.where(alias, 0, n)
            elif node == 0:
                n = n + np.where(alias, hit[1], 0)
            out[:, o] += np.clip(n - 1, 0, None)
    if fold:
        out[:, NONE] += node1_mul_folded(v)  # the one Mul left of node 1's two `none` edges
    return out


def sum_rule(fingerprint: dict | None) -> str:
    """`distinct` for tables onnxruntime timed (hwnas's ONNX export merges the ops, onnxruntime runs
    them as exported), else `all` (other runtimes: not checked)."""
    return "distinct" if (fingerprint or {}).get("runtime") == "onnxruntime" else "all"


def folds(fingerprint: dict | None) -> bool:
    """Whether the runtime folds a Mul by 0 into the convolution before it (onnxruntime, optimiser on)."""
    fp = fingerprint or {}
    return fp.get("runtime") == "onnxruntime" and fp.get("graph_optimization", "all") != "disable"
