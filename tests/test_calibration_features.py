"""benchmarks/calibration_features.py: the cross-validation and the optimised-graph kernel counts."""
import numpy as np

from benchmarks.calibration_features import KERNELS, cross_validate, kernel_counts
from hwnas.latency.layout import nchwc_reorders
from hwnas.spaces import NB201Space


def test_a_feature_that_explains_the_latency_wins_the_cross_validation():
    rng = np.random.default_rng(0)
    S = rng.uniform(0.3, 1.5, 80)
    X = rng.integers(0, 30, (80, 1)).astype(float)
    y = 1.1 * S + 0.01 * X[:, 0] + 0.05 + rng.normal(0, 0.002, 80)
    linear = cross_validate(S, y, np.zeros((80, 0)), k=20, draws=10, seed=0)
    with_x = cross_validate(S, y, X / X.max(), k=20, draws=10, seed=0)
    assert linear.shape == with_x.shape == (10, 4)
    assert with_x[:, 0].mean() > linear[:, 0].mean() + 0.05  # tau
    assert with_x[:, 1].mean() < linear[:, 1].mean() / 2  # MAPE
    again = cross_validate(S, y, X / X.max(), k=20, draws=10, seed=0)
    np.testing.assert_array_equal(with_x, again)  # same seed, same splits


def test_kernel_counts_read_what_onnxruntime_runs():
    space = NB201Space(data_dir=None)
    convs = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    pools = space.parse("|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|")
    K = kernel_counts(space, [convs, pools])
    col = dict(zip(KERNELS, K.T))
    assert K.shape == (2, len(KERNELS))
    assert col["Conv"][0] > col["Conv"][1] > 0  # 90 cell convs vs the stem's, the reductions' and the pools' none
    assert col["AveragePool"][1] > col["AveragePool"][0]
    for i, arch in enumerate([convs, pools]):  # the replayed layout pass agrees with the real graph
        assert col["ReorderInput"][i] + col["ReorderOutput"][i] == nchwc_reorders(arch.op_names)


def test_node_tuples_one_hot_each_nodes_incoming_ops():
    from benchmarks.calibration_features import node_tuples

    space = NB201Space(data_dir=None)
    arch = space.parse("|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|")
    X = node_tuples(space.to_vector(arch)[None, :], 5)
    assert X.shape == (1, 5 + 25 + 125) and X.sum() == 3  # one entry per node
    v = space.to_vector(arch)
    assert np.nonzero(X[0])[0].tolist() == [v[0], 5 + v[1] * 5 + v[2], 30 + (v[3] * 5 + v[4]) * 5 + v[5]]
