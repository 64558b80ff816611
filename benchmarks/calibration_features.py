"""Which features of a whole network would lift a latency table's calibration: cross-validated on
many architectures timed end to end (no timing here).

The table's calibration predicts measured ~= a * table sum + (features) @ d + b, the d ridge-shrunk
toward 0 (the profiler's own fit, lambda by leave-one-out CV inside the calibration set). Feature
sets compared on the same random splits (fit on k architectures, score on all the others; mean and
std over draws): none (linear), onnxruntime's NCHWc layout conversions, those plus the ReLUs and
Adds it cannot fuse into a convolution (the profiler's `layout` mode), the table cost per op class
(`per_op`), counts of each op, which op sits on which edge, the kernels onnxruntime really runs
(each architecture exported and optimised, its nodes counted by type: Conv, Relu, Add, Mul,
pools, Reorder*, Conv with a fused Sum input), and node-level entries learned in context (each
node's tuple of incoming ops, one coefficient each). One nonlinear correction too: a random
forest (scikit-learn) on the layout fit's relative residuals, from the op
on each edge and the kernel counts. Every row prices the ops the runtime runs (the profiler's table
sum `distinct`: ops the export and onnxruntime merge priced once, hwnas/latency/shared_ops.py) but
the first two, which price every listed op (the sum before that rule).

Needs a table with many end-to-end timings, made on the machine to study:

    hwnas-profile calibrate=570 validate=30 device=many out_dir=benchmarks/results/many
    python -m benchmarks.calibration_features --table benchmarks/results/many/many.json

The table goes to stdout and into docs/latency.md (section `calibration_features:<cpu>`, named
after the CPU model that timed the table; `--no-docs` to skip).
"""
from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import numpy as np

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import report_table_study, table_source
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import report_table_study, table_source

FOREST = "layout mode, then a random forest on the residuals (op on each edge + kernel counts)"
KERNELS = ("Conv", "ConvSum", "Relu", "Add", "Mul", "AveragePool", "BatchNormalization",
           "ReorderInput", "ReorderOutput")


def kernel_counts(space, archs, threads: int = 1) -> np.ndarray:
    """(n, len(KERNELS)): nodes of each type in onnxruntime's optimised graph of each architecture."""
    import onnx
    import onnxruntime as ort
    from tqdm import tqdm

    from hwnas.profiling.profiler import export_arch

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        src, opt = Path(tmp) / "a.onnx", Path(tmp) / "opt.onnx"
        for arch in tqdm(archs, desc="optimised graphs"):
            export_arch(space, arch, "cifar10", src, 1, 0)
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.optimized_model_filepath, so.intra_op_num_threads = str(opt), threads
            so.log_severity_level = 3  # the NCHWc serialisation warning, once per architecture
            ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
            nodes = onnx.load(str(opt)).graph.node
            c = collections.Counter(n.op_type for n in nodes)
            c["ConvSum"] = sum(n.op_type == "Conv" and len([x for x in n.input if x]) >= 4 for n in nodes)
            out.append([c.get(k, 0) for k in KERNELS])
    return np.array(out, dtype=float)


def node_tuples(vectors: np.ndarray, n_ops: int) -> np.ndarray:
    """(n, n_ops + n_ops^2 + n_ops^3): one-hot of the ops on the edges into each of a cell's nodes
    1, 2, 3 (edges in the space's order: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2). Its coefficients are
    node-level entries learned in context: what a node with those inputs costs inside the network."""
    blocks, start = [], 0
    for width in (1, 2, 3):
        code = np.zeros(len(vectors), dtype=int)
        for e in range(start, start + width):
            code = code * n_ops + vectors[:, e]
        blocks.append(np.eye(n_ops ** width)[code])
        start += width
    return np.concatenate(blocks, axis=1)


def layout_features(table, space, sum_rule: str = "distinct", dataset: str = "cifar10"
                    ) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """(architectures, table sums, runtime kernel counts, measured ms) of the table's end-to-end
    architectures: what the profiler's layout calibration reads. The sum prices ops by `sum_rule`,
    by default that of a new onnxruntime profile (`distinct`, shared_ops.py)."""
    from hwnas.latency.model import LatencyModel

    model = LatencyModel(table, space, dataset, sum_rule=sum_rule)
    archs = [space.parse(c) for c in table.e2e]
    y = np.array([table.measured_ms(c) for c in table.e2e])
    return archs, model.table_sum(archs), model.runtime_kernels(archs), y


def feature_sets(table, space) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray | tuple]]:
    """(table sum, measured, {name: (n, f) features, or (its own table sum, features)}) of the table's
    end-to-end architectures. The table sum prices the ops the runtime runs (`distinct`, shared_ops.py)
    but in the rows marked `all`, the sum before that rule."""
    from hwnas.latency.model import LatencyModel
    from hwnas.spaces.nb201_cell import OPS

    archs, S, L, y = layout_features(table, space)
    model = LatencyModel(table, space, "cifar10", sum_rule="distinct")  # for the class costs below
    S_all = LatencyModel(table, space, "cifar10", sum_rule="all").table_sum(archs)
    L = L / L.max(axis=0).clip(1)  # layout conversions, unfused ReLUs, unfused Adds
    R = L[:, :1]
    V = np.stack([space.to_vector(a) for a in archs])  # (n, edge): op ids
    onehot = np.eye(len(OPS))[V]  # (n, edge, op)
    counts = onehot.sum(axis=1)
    onehot = onehot.reshape(len(archs), -1)
    nodes = node_tuples(V, len(OPS))
    C = model.class_costs(archs)
    K = kernel_counts(space, archs)
    K = K / K.max(0).clip(1)
    unit = y.mean()  # count features scaled to the latencies, so one ridge penalty suits all
    return S, y, {
        "every listed op priced (table sum `all`), linear": (S_all, np.zeros((len(y), 0))),
        "every listed op priced (table sum `all`), layout conversions (the layout mode before)": (S_all, R),
        "none (linear)": np.zeros((len(y), 0)),
        "layout conversions": R,
        "layout conversions + unfused ReLUs and Adds (the profiler's layout mode)": L,
        "table cost per op class (per_op mode)": C,
        "layout mode + cost per op class": np.column_stack([L, C]),
        "layout mode + op counts": np.column_stack([L, counts * unit / 10]),
        "layout mode + op on each edge": np.column_stack([L, onehot * unit / 10]),
        "layout mode + kernel counts of the optimised graph": np.column_stack([L, K * unit]),
        "kernel counts of the optimised graph": K * unit,
        "layout mode + each node's tuple of incoming ops (155 learned node entries)": np.column_stack([L, nodes * unit / 10]),
        FOREST: np.column_stack([L, onehot, K]),
    }


def cross_validate(S, y, X, k: int, draws: int, seed: int, forest: bool = False) -> np.ndarray:
    """(draws, 4): Kendall tau, MAPE %, within 5%, within 10% on the held-out architectures.
    forest: X[:, :3] are the layout mode's kernel counts; a random forest on X[:, 3:] corrects that fit's residuals."""
    from sklearn.ensemble import RandomForestRegressor

    from hwnas.latency.fidelity import fidelity
    from hwnas.latency.model import RIDGE_GRID, _ridge_cv, fit_calibration

    rng = np.random.default_rng(seed)  # the same splits for every feature set
    out = []
    for _ in range(draws):
        idx = rng.permutation(len(y))
        tr, te = idx[:k], idx[k:]
        if X.shape[1] == 0:
            a, b = fit_calibration(S[tr], y[tr])
            pred = a * S[te] + b
        else:
            L = X[:, :3] if forest else X
            th, _, _ = _ridge_cv(S[tr], L[tr], y[tr], RIDGE_GRID)
            pred = th[0] * S + L @ th[1:-1] + th[-1]
            if forest:
                rf = RandomForestRegressor(200, min_samples_leaf=3, random_state=seed)
                pred = pred * (1 + rf.fit(X[tr, 1:], y[tr] / pred[tr] - 1).predict(X[:, 1:]))
            pred = pred[te]
        f = fidelity(pred, y[te])
        out.append((f["kendall_tau"], f["mape_pct"], f["within_5pct"], f["within_10pct"]))
    return np.array(out)


def main() -> None:
    from hwnas.latency.table import LatencyTable
    from hwnas.spaces import SPACES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="a NAS-Bench-201 CIFAR-10 table with many e2e timings")
    ap.add_argument("--k", type=int, nargs="+", default=[20, 40, 130], help="calibration architectures per split")
    ap.add_argument("--draws", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    table = LatencyTable.load(args.table)
    S, y, sets = feature_sets(table, SPACES.get("nb201")())
    ks = [k for k in args.k if k <= len(y) - 10]  # at least 10 held out to score on
    if ks != args.k:
        print(f"the table has {len(y)} timed architectures: k={sorted(set(args.k) - set(ks))} left out")
    args.k = ks
    lines = ["| features besides the table sum | " + " | ".join(f"k={k}: tau / MAPE / within 10%" for k in args.k) + " |",
             "|---|" + "---|" * len(args.k)]
    for name, X in sets.items():
        S_set, X = X if isinstance(X, tuple) else (S, X)
        cells = []
        for k in args.k:
            r = cross_validate(S_set, y, X, k, args.draws, args.seed, forest=name == FOREST)
            cells.append(f"{r[:, 0].mean():.3f} ± {r[:, 0].std():.3f} / {r[:, 1].mean():.1f}% / {100 * r[:, 3].mean():.0f}%")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    note = f"{table_source(args.table, table, len(y))}; {args.draws} random splits per k"
    report_table_study("latency.md", "calibration_features", table, "\n".join(lines), note, docs=not args.no_docs)


if __name__ == "__main__":
    main()
