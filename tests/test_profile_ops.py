"""NB201Space.ops: the layers an architecture runs, keyed by type and shape; op modules and export."""
from collections import Counter

import numpy as np
import pytest

from hwnas.spaces import NB201Space
from hwnas.spaces.nb201_net import Head, ReLUConvBN, ResidualReduction, Stem

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def space():
    return NB201Space()  # ops need no benchmark data


def test_ops_of_a_known_arch_count_and_keys(space):
    ops = space.ops(space.parse(ARCH), "cifar10")
    # stem + 2 reductions + 3 stages x 5 cells x (6 edges + 3 node sums) + head
    assert len(ops) == 1 + 2 + 15 * 9 + 1 == 139
    counts = Counter(o.key for o in ops)
    assert ops[0].key == "stem-cin3-cout16-h32-w32-s1" and ops[-1].key == "head-cin64-cout10-h8-w8-s1"
    assert counts["nor_conv_3x3-cin16-cout16-h32-w32-s1"] == 3 * 5
    assert counts["nor_conv_3x3-cin64-cout64-h8-w8-s1"] == 3 * 5
    assert counts["skip_connect-cin32-cout32-h16-w16-s1"] == 2 * 5
    assert counts["avg_pool_3x3-cin16-cout16-h32-w32-s1"] == 5
    assert counts["add-cin16-cout16-h32-w32-s1"] == 3 * 5
    assert counts["reduction-cin16-cout32-h32-w32-s2"] == 1 and counts["reduction-cin32-cout64-h16-w16-s2"] == 1
    assert not any(o.op in ("none", "nor_conv_1x1") for o in ops)


def test_every_arch_runs_the_same_number_of_ops_none_included(space):
    none = space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    ops = space.ops(none)
    assert len(ops) == 139 and sum(o.op == "none" for o in ops) == 90


def test_imagenet16_shapes_and_classes(space):
    ops = space.ops(space.parse(ARCH), "ImageNet16-120")
    assert ops[0].key == "stem-cin3-cout16-h16-w16-s1"
    assert ops[-1].key == "head-cin64-cout120-h4-w4-s1"
    assert len(space.distinct_ops("ImageNet16-120")) == 22


def test_distinct_ops_and_decomposition_match_ops(space):
    distinct = space.distinct_ops("cifar10")
    assert len(distinct) == len({o.key for o in distinct}) == 22  # stem, 3 adds, 2 reductions, head, 5 ops x 3 stages
    fixed, per_edge = space.ops_decomposition("cifar10")
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = space.sample(rng)
        expect = Counter(o.key for o in fixed) + sum((Counter(o.key for o in per_edge[n]) for n in arch.op_names), Counter())
        assert Counter(o.key for o in space.ops(arch)) == expect
        assert {o.key for o in space.ops(arch)} <= {o.key for o in distinct}


def test_op_modules_are_the_networks_own_layers_with_the_right_output(space):
    import torch

    kinds = {"stem": Stem, "reduction": ResidualReduction, "head": Head, "nor_conv_3x3": ReLUConvBN}
    for spec in space.distinct_ops("cifar10"):
        module, shape = space.op_module(spec)
        if spec.op in kinds:
            assert isinstance(module, kinds[spec.op])
        with torch.no_grad():
            out = module.eval()(torch.zeros(1, *shape))
        expect = (1, spec.c_out) if spec.op == "head" else (1, spec.c_out, (spec.h - 1) // spec.stride + 1,
                                                             (spec.w - 1) // spec.stride + 1)
        assert tuple(out.shape) == expect, spec.key


def test_ops_export_to_checked_onnx_and_time_on_onnxruntime(space, tmp_path):
    import onnx

    from hwnas.profiling.profiler import export_op
    from hwnas.profiling.runners import RUNNERS, TimingSettings

    runner = RUNNERS.get("ort_cpu")(TimingSettings(warmup=1, repeats=3))
    assert runner.available() == (True, "")
    for spec in space.distinct_ops("cifar10"):
        path = tmp_path / f"{spec.key}.onnx"
        shape = export_op(space, spec, path)
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        t = runner.time(path, shape)
        assert t.n == 3 and t.median_ms > 0 and t.min_ms <= t.median_ms <= t.p90_ms


def test_op_export_is_seeded(space, tmp_path):
    from hwnas.profiling.profiler import export_op

    spec = next(s for s in space.distinct_ops() if s.op == "nor_conv_3x3")
    export_op(space, spec, tmp_path / "a.onnx", seed=1)
    export_op(space, spec, tmp_path / "b.onnx", seed=1)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
