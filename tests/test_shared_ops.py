"""The `distinct` table sum: ops the exported network and onnxruntime run once are priced once."""
from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from hwnas.errors import DataError
from hwnas.latency.model import LatencyModel, table_sum_rule
from hwnas.latency.shared_ops import merged_edges, sum_rule
from hwnas.latency.table import LatencyTable
from hwnas.profiling.profiler import recalibrate, sample_archs
from hwnas.profiling.runners.base import summarize
from hwnas.spaces import NB201Space
from hwnas.spaces.nb201_cell import OPS
from profile_fixture import synthetic_table

POOL, NONE = OPS.index("avg_pool_3x3"), OPS.index("none")
CASES = [  # (arch, merged pools, merged Muls with onnxruntime's folding)
    ("|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|", 2, 0),
    ("|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|", 1, 0),  # node 1 is node 0
    ("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|", 0, 2),  # node 1's Muls: merged, folded
    ("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|", 0, 2),  # no conv to fold into
    ("|nor_conv_1x1~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|", 0, 0),
]


@pytest.fixture(scope="module")
def space():
    return NB201Space()


def _optimised_counts(space, arch, tmp_path, level: str) -> collections.Counter:
    import onnx
    import onnxruntime as ort

    from hwnas.profiling.profiler import export_arch

    export_arch(space, arch, "cifar10", tmp_path / "a.onnx")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(str(tmp_path / "a.onnx"), opts, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)


def test_merged_edges_of_known_cells(space):
    for arch, pools, muls in CASES:
        v = space.to_vector(space.parse(arch))[None]
        m = merged_edges(v)[0]
        assert (m[POOL], m[NONE]) == (pools, muls), arch
        assert merged_edges(v, fold=False)[0][NONE] == muls - (arch.startswith("|nor_conv") and muls == 2), arch


def test_merged_edges_match_the_nodes_onnxruntime_runs(space, tmp_path):
    """Pools and Muls in the exported graph (optimiser off) and after onnxruntime's basic level, against
    15 cells x (edges with the op - merged) (+ the 2 reductions' pools)."""
    rng = np.random.default_rng(0)
    archs = [space.parse(a) for a, _, _ in CASES] + [space.sample(rng) for _ in range(15)]
    for arch in archs:
        v = space.to_vector(arch)
        if np.all(v[[0, 1, 3]] == NONE):  # the first cell's Mul folds into the stem conv: one of 15 (not modelled)
            continue
        for level, fold in (("ORT_DISABLE_ALL", False), ("ORT_ENABLE_BASIC", True)):
            got = _optimised_counts(space, arch, tmp_path, level)
            m = merged_edges(v[None], fold=fold)[0]
            assert got["AveragePool"] == 15 * ((v == POOL).sum() - m[POOL]) + 2, (arch, level)
            assert got["Mul"] == 15 * ((v == NONE).sum() - m[NONE]), (arch, level)


def test_distinct_sum_prices_merged_ops_once(space, tmp_path):
    t = synthetic_table(space, tmp_path / "d.json")
    t.fingerprint.update(runtime="onnxruntime", graph_optimization="all")
    every, distinct = LatencyModel(t, space, "cifar10"), LatencyModel(t, space, "cifar10", sum_rule="distinct")
    assert table_sum_rule(space, t.fingerprint) == sum_rule(t.fingerprint) == "distinct"
    assert every.sum_rule == "all"  # a table calibrated before the rule
    three_pools = space.parse("|avg_pool_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|skip_connect~1|skip_connect~2|")
    _, edge = every._edge_costs()
    assert distinct.table_sum([three_pools])[0] == pytest.approx(every.table_sum([three_pools])[0] - 2 * edge[POOL])
    rng = np.random.default_rng(2)
    archs = [space.sample(rng) for _ in range(30)]
    v = np.stack([space.to_vector(a) for a in archs])
    np.testing.assert_allclose(distinct.table_sum(archs), every.table_sum(archs) - merged_edges(v) @ edge, rtol=1e-12)
    pools = list(distinct.classes).index("avg_pool_3x3")
    np.testing.assert_allclose(distinct.class_costs(archs)[:, pools], ((v == POOL).sum(1) - merged_edges(v)[:, POOL]) * edge[POOL])
    # the space-wide features (the positivity check) and the code path price the same way
    codes, sums, _ = distinct.space_features()
    i = [a.code for a in archs]
    np.testing.assert_allclose(sums[i], distinct.table_sum(archs), rtol=1e-12)


def test_profiles_calibrate_on_the_distinct_sum_and_store_it(space, tmp_path):
    t = synthetic_table(space, tmp_path / "dev.json")
    t.fingerprint.update(runner="ort_cpu", runtime="onnxruntime", graph_optimization="all")
    truth = LatencyModel(t, space, "cifar10", sum_rule="distinct")
    archs = sample_archs(space, 40, 0)
    y = 1.1 * truth.table_sum(archs) + truth.runtime_kernels(archs) @ [0.002, 0.001, 0.0005] + 0.02
    for arch, ms in zip(archs, y):
        t.add_e2e(str(arch), summarize([ms] * 3))
    rep = recalibrate(space, "cifar10", t, 20, 20)
    assert rep.calibration["table_sum"] == "distinct" and rep.calibration["mode"] == "layout"
    assert rep.validation["calibrated"]["mape_pct"] < 1e-3
    loaded = LatencyModel(LatencyTable.load(t.path), space, "cifar10")
    assert loaded.sum_rule == "distinct" and loaded.calibration["table_sum"] == "distinct"
    np.testing.assert_allclose(loaded.predict(archs), y, rtol=1e-6)
    np.testing.assert_allclose(loaded.predict_codes(np.array([a.code for a in archs])), y, rtol=1e-6)
    # every listed op priced instead: the same timings fit worse
    t.fingerprint["runtime"] = "tensorrt"  # a runtime the rule was not checked on keeps `all`
    rep_all = recalibrate(space, "cifar10", t, 20, 20)
    assert rep_all.calibration["table_sum"] == "all"
    assert rep_all.validation["calibrated"]["mape_pct"] > 100 * rep.validation["calibrated"]["mape_pct"]


def test_a_table_with_an_unknown_sum_rule_is_refused(space, tmp_path):
    t = synthetic_table(space, tmp_path / "bad.json", calibration=(1.0, 0.0))
    raw = json.loads(t.path.read_text())
    raw["calibration"]["table_sum"] = "some"
    t.path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match="calibration.table_sum is 'some', not one of all, distinct"):
        LatencyTable.load(t.path)
