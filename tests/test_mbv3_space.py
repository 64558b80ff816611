"""space=mbv3: the MobileNetV3 (Once-for-All) macro space, its networks, its latency table and
every searcher on it."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.config import DeviceConfig, SpaceConfig, this_machine_table
from hwnas.errors import ConfigError, HwnasError
from hwnas.spaces import SPACES, make_space
from hwnas.spaces.mbv3 import MBV3Arch, MBV3Space

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def space() -> MBV3Space:
    return SPACES.get("mbv3")()


def archs(space, n=30, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_string_round_trip_and_readable_form(space):
    a = space.parse("k3e4-k5e6|k3e3-k7e4-k5e6|k5e4-k5e4|k7e3-k7e3-k7e3-k7e3|k3e6-k3e6")
    assert a.depths == (2, 3, 2, 4, 2) and a.stages[1][1] == (7, 4)
    for x in archs(space):
        assert space.parse(str(x)) == x and hash(space.parse(str(x))) == hash(x)


@pytest.mark.parametrize("text, says", [
    ("k3e4-k5e6|k3e3-k7e4", "expected 5 stages"),
    ("k3e4|k3e3-k7e4|k5e4-k5e4|k7e3-k7e3|k3e6-k3e6", "stage 1 has 1 block"),
    ("k3e4-k5e6|k3e3-k9e4|k5e4-k5e4|k7e3-k7e3|k3e6-k3e6", "kernel 9"),
    ("k3e4-k5e6|k3e3-k3e4|k5e4-k5e2|k7e3-k7e3|k3e6-k3e6", "expand ratio 2"),
    ("k3e4-k5e6|k3e3-k3e4|k5e4-x|k7e3-k7e3|k3e6-k3e6", "block 'x' of stage 3"),
])
def test_parse_says_what_is_wrong(space, text, says):
    with pytest.raises(HwnasError, match=re.escape(says)):
        space.parse(text)


def test_vector_round_trip_and_canonical_unused_slots(space):
    for x in archs(space):
        v = space.to_vector(x)
        assert len(v) == len(space.cardinalities()) == 45
        assert space.from_vector(v) == x
    # Slots beyond a stage's depth do not change the network, so they do not change the arch.
    x = space.parse("k3e4-k5e6|k3e3-k7e4|k5e4-k5e4|k7e3-k7e3|k3e6-k3e6")  # every stage at depth 2
    v = space.to_vector(x)
    noisy = v.copy()
    for s in range(5):
        for j in (2, 3):
            noisy[space._slot(s, j)] = 2
            noisy[space._slot(s, j) + 1] = 1
    assert space.from_vector(noisy) == x and (space.to_vector(space.from_vector(noisy)) == v).all()


def test_size_counts_distinct_networks(space):
    assert space.size() == (9 ** 2 + 9 ** 3 + 9 ** 4) ** 5


def test_mutate_always_changes_the_network(space):
    rng = np.random.default_rng(1)
    for x in archs(space, 50):
        y = space.mutate(x, rng)
        assert y != x and [s.key for s in space.ops(y, "digits")] != [s.key for s in space.ops(x, "digits")]


def test_crossover_takes_each_block_from_a_parent(space):
    rng = np.random.default_rng(2)
    pop = archs(space, 20)
    for a, b in zip(pop, pop[1:]):
        c = space.crossover(a, b, rng)
        assert space.parse(str(c)) == c
        for s, blocks in enumerate(c.stages):
            assert len(blocks) in (len(a.stages[s]), len(b.stages[s]))
            for j, blk in enumerate(blocks):
                assert blk in [p.stages[s][j] for p in (a, b) if j < len(p.stages[s])]


@pytest.mark.parametrize("kind, width", [("onehot", 135), ("categorical", 45), ("features", 65)])
def test_encodings_have_fixed_widths(space, kind, width):
    assert kind in space.encodings
    enc = [space.encode(x, kind) for x in archs(space, 10)]
    assert {e.shape for e in enc} == {(width,)}
    assert len({e.tobytes() for e in enc}) == 10  # different archs, different encodings


@pytest.mark.parametrize("shape, classes", [((1, 8, 8), 10), ((1, 28, 28), 10), ((3, 32, 32), 7)])
def test_build_runs_any_input_size_and_class_count(space, shape, classes):
    x = archs(space, 1, seed=3)[0]
    net = space.build(x, classes, in_channels=shape[0], input_size=shape[1:]).eval()
    with torch.no_grad():
        assert net(torch.randn(2, *shape)).shape == (2, classes)
        # built without the input size (the 32x32 plan), it still runs on any H, W >= 8
        assert space.build(x, classes, shape[0]).eval()(torch.randn(1, *shape)).shape == (1, classes)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_small_inputs_stop_striding_at_2x2(space):
    x = archs(space, 1)[0]
    for dataset, final in (("digits", 2), ("fashion_mnist", 2), ("cifar10", 2)):
        head = space.ops(x, dataset)[-1]
        assert head.op == "head" and (head.h, head.w) == (final, final)


def test_onnx_export_runs_in_onnxruntime_and_matches_torch(space, tmp_path):
    from hwnas.onnx_io import export_onnx, ort_session

    x = archs(space, 1, seed=4)[0]
    torch.manual_seed(0)
    net = space.build_for(x, "digits").eval()
    inp = torch.randn(3, 1, 8, 8)
    export_onnx(net, inp, tmp_path / "m.onnx")
    sess = ort_session(tmp_path / "m.onnx")
    got = sess.run(None, {sess.get_inputs()[0].name: inp.numpy()})[0]
    with torch.no_grad():
        want = net(inp).numpy()
    assert got.shape == (3, 10) and np.allclose(got, want, atol=1e-4)


def test_ops_are_the_network_layer_by_layer(space):
    distinct = {s.key for s in space.distinct_ops("digits")}
    assert len(distinct) == len(space.distinct_ops("digits"))
    for x in archs(space, 10):
        ops = space.ops(x, "digits")
        assert len(ops) == 3 + sum(x.depths) and {s.key for s in ops} <= distinct
    # The op modules, run in a row, compute a network of the right output shape.
    x = archs(space, 1, seed=5)[0]
    h = torch.randn(1, *space.input_shape("digits"))
    for spec in space.ops(x, "digits"):
        module, shape = space.op_module(spec)
        assert tuple(h.shape[1:]) == shape
        h = module.eval()(h)
    assert h.shape == (1, 10)


def test_from_config_reads_width_mult():
    wide = make_space(SpaceConfig(name="mbv3", width_mult=0.5))
    assert wide.widths == (16, 24, 40, 56, 80)
    with pytest.raises(ConfigError, match="width_mult"):
        make_space(SpaceConfig(name="mbv3", width_mult=0.0))
    nb = make_space(SpaceConfig(name="nb201", channels=8, cells_per_stage=2))
    assert (nb.channels, nb.cells_per_stage) == (8, 2)


def test_no_space_name_tests_or_duck_tests_in_hwnas():
    bad = []
    for path in (REPO / "hwnas").rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.name\s*[!=]=\s*[\"']nb201[\"']|hasattr\((self\.)?space\b", line):
                bad.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_default_table_names_carry_space_and_dataset():
    from hwnas.apps.profile import default_device_name
    from hwnas.profiling.config import ProfileConfig, RunnerConfig

    cfg = ProfileConfig(runner=RunnerConfig(name="ort_cpu"), space="mbv3", dataset="digits")
    assert default_device_name(cfg) == this_machine_table("mbv3", "digits")
    assert this_machine_table("mbv3", "digits").endswith("-t1-b1-mbv3-digits")
    assert this_machine_table() == this_machine_table("nb201", "cifar10") and this_machine_table().endswith("-t1-b1")


# --- latency: a real profile, and searches on a table ------------------------------------------

def test_real_profile_builds_a_table_that_predicts_mbv3(tmp_path):
    """hwnas-profile space=mbv3 dataset=digits with tiny settings: every op timed for real."""
    from hwnas.apps.profile import run_profile
    from hwnas.latency.profiled import load_model
    from hwnas.profiling.config import ProfileConfig, RunnerConfig

    cfg = ProfileConfig(runner=RunnerConfig(name="ort_cpu"), space="mbv3", dataset="digits", warmup=1, repeats=3,
                        e2e_repeats=3, calibrate=3, validate=2, out_dir=str(tmp_path), progress=False, plot=False)
    rep = run_profile(cfg)
    assert rep.path.name == this_machine_table("mbv3", "digits") + ".json"
    space = MBV3Space()
    model = load_model(rep.path, space, check_machine=False)
    pred = model.predict(archs(space, 20))
    assert model.calibrated and np.isfinite(pred).all() and (pred > 0).all()
    # deeper, wider networks are predicted slower
    small = space.parse("|".join(["k3e3-k3e3"] * 5))
    big = space.parse("|".join(["k7e6-k7e6-k7e6-k7e6"] * 5))
    assert model.predict([big])[0] > model.predict([small])[0]


@pytest.fixture
def mbv3_table(tmp_path, monkeypatch):
    """A synthetic (not timed) mbv3 digits table under this machine's default name in the user's tables."""
    from profile_fixture import synthetic_table

    from hwnas.latency.table import table_path

    name = this_machine_table("mbv3", "digits")
    path = table_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_table(MBV3Space(), path, "digits", calibration=(1.2, 0.1))
    return name


def test_profiled_source_prices_archs_on_demand(mbv3_table):
    from hwnas.config import ConstraintsConfig, latency_budget
    from hwnas.latency.base import IndexedSource
    from hwnas.latency.sources import make_latency_source
    from hwnas.search import QUANTILE_SAMPLE, space_latencies

    space = MBV3Space()
    source = make_latency_source(space, DeviceConfig(name=mbv3_table, kind="profiled"), "digits", None)
    assert not isinstance(source, IndexedSource)
    xs = archs(space, 5)
    assert (source.latency(xs) == source.latency(xs)).all() and (source.latency(xs) > 0).all()
    dev = DeviceConfig(name=mbv3_table, kind="profiled", default_latency_quantile=0.3)
    q = latency_budget(ConstraintsConfig(), dev, space_latencies(space, source))
    sample = source.latency(__import__("hwnas.spaces.base", fromlist=["x"]).sample_distinct(space, QUANTILE_SAMPLE, 0))
    assert q == pytest.approx(np.quantile(sample, 0.3))


def test_this_machine_without_table_profiles_automatically(monkeypatch, tmp_path):
    """device=this_machine on mbv3 with no table: the source measures it first (here the
    measurement is replaced by writing a synthetic table, to keep the test fast)."""
    from profile_fixture import synthetic_table

    import hwnas.latency.profiled as profiled
    from hwnas.latency.sources import make_latency_source
    from hwnas.latency.table import table_path

    calls = []

    def fake_profile(space, dataset, name):
        calls.append((space.name, dataset, name))
        path = table_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        synthetic_table(space, path, dataset, calibration=(1.0, 0.0))
        return path

    monkeypatch.setattr(profiled, "auto_profile", fake_profile)
    name = this_machine_table("mbv3", "digits")
    src = make_latency_source(MBV3Space(), DeviceConfig(name=name, kind="profiled", auto_profile=True), "digits", None)
    assert calls == [("mbv3", "digits", name)] and src.latency(archs(MBV3Space(), 2)).shape == (2,)
    make_latency_source(MBV3Space(), DeviceConfig(name=name, kind="profiled", auto_profile=True), "digits", None)
    assert len(calls) == 1  # the table exists now


def test_benchmark_devices_and_tabular_evaluator_refuse_mbv3(data_dir):
    from hwnas.config import DatasetConfig
    from hwnas.evaluators.tabular import tabular_metric
    from hwnas.latency.sources import make_latency_source

    with pytest.raises(ConfigError, match="profiled"):
        make_latency_source(MBV3Space(), DeviceConfig(name="raspi4", kind="benchmark"), "cifar10", data_dir)
    with pytest.raises(ConfigError, match="evaluator=train"):
        tabular_metric(MBV3Space(), DatasetConfig(name="cifar10"), data_dir)


class ArchFunctionAccuracy:
    """TEST DOUBLE for the accuracy only (no training): a fixed, deterministic function of the
    architecture, so the searchers' mechanics on mbv3 are what is tested. Latency is real (table)."""

    def __new__(cls, space, budget):
        from hwnas.evaluators.base import Evaluator

        class _Eval(Evaluator):
            def _evaluate(self, arch: MBV3Arch) -> float:
                v = space.encode(arch, "features")
                return float(60 + 30 * np.tanh(v @ np.linspace(-1, 1, len(v))))

        return _Eval(space, budget)


@pytest.mark.parametrize("name", ["random", "regularized_evolution", "nsga2", "nsga3", "lanas", "ganas", "agnet"])
def test_every_searcher_runs_on_mbv3(name, mbv3_table):
    from hwnas.latency.sources import make_latency_source
    from hwnas.problem import SearchProblem
    from hwnas.search import make_searcher
    from hwnas.search_loop import run_search
    from hwnas.searchers import SEARCHER_CONFIGS

    space = MBV3Space()
    source = make_latency_source(space, DeviceConfig(name=mbv3_table, kind="profiled"), "digits", None)
    budget = float(np.median(source.latency(archs(space, 50))))
    problem = SearchProblem(space, source, budget)
    searcher = make_searcher(SEARCHER_CONFIGS[name](), problem, seed=0)
    evals = run_search(problem, ArchFunctionAccuracy(space, 12), searcher).history
    assert len(evals) == 12 and len({e.arch for e in evals}) == 12
    assert all(isinstance(e.arch, MBV3Arch) for e in evals)
    assert sum(e.feasible for e in evals) >= 6  # latency is free: queries go to feasible archs


def test_calibration_below_zero_is_raised_to_a_floor_not_a_crash(tmp_path):
    """A calibration fitted on few networks may extrapolate below zero for the smallest networks of
    a space too large to check whole: those are priced at half the fastest network timed, with one
    warning, instead of stopping a search mid-way."""
    from profile_fixture import synthetic_table

    from hwnas.latency.profiled import ProfiledArchSource, load_model
    from hwnas.timing import summarize

    space = MBV3Space()
    path = tmp_path / "t.json"
    table = synthetic_table(space, path, "digits", calibration=(1.0, -1e6))  # every prediction < 0
    table.add_e2e(str(archs(space, 1)[0]), summarize([2.0, 2.0, 2.0]))
    table.save()
    src = ProfiledArchSource(space, "t", load_model(path, space, check_machine=False))
    lat = src.latency(archs(space, 4))
    assert (lat == 1.0).all() and src.floored == 4
