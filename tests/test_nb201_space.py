import numpy as np
import pytest
import torch

from hwnas.data.nb201 import load_accuracy
from hwnas.errors import HwnasError
from hwnas.spaces.nb201 import NB201Arch, parse_nb201
from hwnas.spaces.nb201_net import OPS

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_round_trip_all_archs_with_benchmark_index(nb201, data_dir):
    strings = load_accuracy(data_dir)["arch"].tolist()
    assert len(strings) == 15625
    seen = set()
    for i, s in enumerate(strings):
        arch = nb201.parse(s)
        assert str(arch) == s
        assert nb201.index(arch) == i
        assert nb201.from_index(i) == arch
        seen.add(arch)
    assert len(seen) == 15625 == nb201.size()
    assert [str(a) for a in list(nb201.enumerate())[:3]] == strings[:3]


def test_arch_is_immutable_and_hashable():
    a, b = parse_nb201(EXAMPLE), parse_nb201(EXAMPLE)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(Exception):
        a.ops = (0,) * 6  # frozen dataclass


@pytest.mark.parametrize("bad, what", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "3 nodes"),
    ("|conv_7x7~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "unknown op 'conv_7x7'"),
    ("|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "op~0"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "2 edge(s)"),
])
def test_malformed_strings_say_what_is_wrong(bad, what):
    with pytest.raises(HwnasError, match=None) as exc:
        parse_nb201(bad)
    assert what in str(exc.value)


def test_mutate_changes_exactly_one_edge_and_crossover_mixes(nb201):
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = nb201.sample(rng)
        m = nb201.mutate(a, rng)
        assert sum(x != y for x, y in zip(a.ops, m.ops)) == 1
        b = nb201.sample(rng)
        c = nb201.crossover(a, b, rng)
        assert all(x in (y, z) for x, y, z in zip(c.ops, a.ops, b.ops))


def test_encodings(nb201):
    a = parse_nb201(EXAMPLE)
    onehot = nb201.encode(a, "onehot")
    assert onehot.shape == (30,) and onehot.sum() == 6
    assert list(np.nonzero(onehot)[0] % 5) == list(a.ops)
    assert list(nb201.encode(a, "categorical")) == list(a.ops)
    adj, types = nb201.graph(a)
    assert adj.shape == (8, 8) and np.all(np.tril(adj) == 0)  # a DAG in topological order
    assert list(types[1:7] - 1) == list(a.ops) and types[0] == 0 and types[-1] == 6
    # Edge (2<-1) reads node 1 = the output of edge (1<-0) (op node 1).
    assert adj[1, 3] == 1 and adj[0, 1] == 1 and adj[0, 3] == 0
    assert nb201.encode(a, "adjacency").shape == (28 + 8 * 7,)
    with pytest.raises(ValueError):
        nb201.encode(a, "nope")


def test_connectivity():
    assert parse_nb201(EXAMPLE).is_connected()
    assert not NB201Arch((0,) * 6).is_connected()
    # 1<-0 conv, but nothing leaves node 1 or 0 towards 3 except via none edges.
    assert not NB201Arch((3, 0, 0, 0, 0, 0)).is_connected()
    assert NB201Arch((0, 0, 0, 1, 0, 0)).is_connected()


@pytest.mark.parametrize("op", range(len(OPS)))
def test_network_forward_for_every_op(nb201, op):
    net = nb201.build(NB201Arch((op,) * 6), num_classes=10).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def _params(net):
    return sum(p.numel() for p in net.parameters())


def test_parameter_counts_follow_op_choices(nb201):
    """One edge changed from skip to conv adds (k*k*C*C + 2C) per cell: 5 cells per stage, C=16/32/64."""
    base = NB201Arch((1, 1, 1, 1, 1, 1))
    p_base = _params(nb201.build(base, 10))
    for op, k in (("nor_conv_3x3", 3), ("nor_conv_1x1", 1)):
        ops = list(base.ops)
        ops[2] = OPS.index(op)
        expected = sum(5 * (k * k * c * c + 2 * c) for c in (16, 32, 64))
        assert _params(nb201.build(NB201Arch(tuple(ops)), 10)) - p_base == expected
    # none / skip / pooling carry no parameters; the classifier follows num_classes.
    assert _params(nb201.build(NB201Arch((0, 4, 0, 4, 0, 1)), 10)) == p_base
    assert _params(nb201.build(base, 100)) - p_base == 90 * 64 + 90
