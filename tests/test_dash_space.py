"""space=dash: DASH's backbones (1-D ResNet, Wide-ResNet) with a (kernel, dilation) per searchable
convolution; the contract the DASH searcher builds on; its op list, latency table and searches."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from hwnas.config import SpaceConfig
from hwnas.errors import ConfigError, HwnasError
from hwnas.spaces import SPACES, make_space
from hwnas.spaces.dash import DashArch, DashSpace, input_dims
from hwnas.spaces.dash_net import build_backbone, conv_slots, fixed_conv


@pytest.fixture(scope="module")
def seq() -> DashSpace:
    return DashSpace(dims=1)


@pytest.fixture(scope="module")
def img() -> DashSpace:
    return DashSpace(dims=2)


def archs(space, n=20, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


# --- identity ---------------------------------------------------------------------------------

def test_layer_counts_follow_dashs_backbones():
    assert DashSpace(dims=1).n_layers() == 9  # 3 blocks of 3 convolutions (DASH's ResNet1D)
    assert DashSpace(dims=2).n_layers() == 7  # stem + 3 stages of 1 block of 2
    assert DashSpace(dims=2, depth=2).n_layers() == 13  # WRN-16: 6n + 1 with n = 2
    assert DashSpace(dims=1, depth=2).n_layers() == 18


def test_string_round_trip(seq, img):
    for space in (seq, img):
        for a in archs(space):
            assert space.parse(str(a)) == a and hash(space.parse(str(a))) == hash(a)
    a = seq.parse("k3d1-k5d3-k7d7-k9d15-k3d1-k3d1-k3d1-k3d1-k3d1")
    assert seq.choices(a)[:4] == [(3, 1), (5, 3), (7, 7), (9, 15)]
    assert seq.from_choices(seq.choices(a)) == a


@pytest.mark.parametrize("text, says", [
    ("k3d1-k3d1", "2 convolution(s), the 1d backbone (width 16, depth 1) has 9"),
    ("", "0 convolution(s)"),
    ("k3d1-k3d1-k3d1-k3d1-k3d1-k3d1-k3d1-k3d1-k4d1", "kernel 4 at convolution 8; kernels: 3, 5, 7, 9"),
    ("k3d2-k3d1-k3d1-k3d1-k3d1-k3d1-k3d1-k3d1-k3d1", "dilation 2 at convolution 0; dilations: 1, 3, 7, 15"),
    ("k3d1-k3-k3d1-k3d1-k3d1-k3d1-k3d1-k3d1-k3d1", "convolution 1 reads 'k3', expected k<kernel>d<dilation>"),
])
def test_parse_says_what_is_wrong(seq, text, says):
    with pytest.raises(HwnasError, match=re.escape(says)) as info:
        seq.parse(text)
    assert "\n" not in str(info.value)


def test_vector_round_trip_and_one_position_per_conv(seq, img):
    for space in (seq, img):
        assert space.cardinalities() == [16] * space.n_layers()
        for a in archs(space):
            v = space.to_vector(a)
            assert space.from_vector(v) == a
    # value = kernel index * len(dilations) + dilation index
    a = seq.from_choices([(5, 7)] + [(3, 1)] * 8)
    assert seq.to_vector(a).tolist() == [1 * 4 + 2] + [0] * 8
    assert seq.from_vector([99] + [-3] * 8) == seq.from_choices([(9, 15)] + [(3, 1)] * 8)  # clipped


def test_configurable_sets_and_bad_parameters():
    s = DashSpace(dims=1, kernels=[3, 7, 11, 15, 19], dilations=[1, 3])
    assert s.cardinalities() == [10] * 9 and s.candidates[-1] == (19, 3)
    for kw, says in [(dict(kernels=[3, 4]), "must be odd"), (dict(kernels=[]), "non-empty list"),
                     (dict(dilations=[1, 1]), "lists a value twice"), (dict(dims=3), "space.dims=3"),
                     (dict(width=0), "space.width=0"), (dict(dilations=[0]), "positive integers")]:
        with pytest.raises(ConfigError, match=re.escape(says)):
            DashSpace(**kw)


def test_from_config_reads_every_parameter_and_dims_follow_the_dataset():
    s = make_space(SpaceConfig(name="dash", dims=1, width=8, depth=2, kernels=[3, 5], dilations=[1, 2]))
    assert (s.dims, s.width, s.depth, s.kernels, s.dilations) == (1, 8, 2, (3, 5), (1, 2))
    assert input_dims("osuleaf") == input_dims("plaid") == input_dims("fashion_mnist_seq") == 1
    assert input_dims("fashion_mnist") == input_dims("cifar10") == input_dims("npz") == 2
    assert DashSpace.defaults_for("osuleaf") == {"dims": 1}


# --- the networks -------------------------------------------------------------------------------

@pytest.mark.parametrize("dims, shape, classes", [(1, (1, 1, 427), 6), (1, (3, 1, 50), 4), (2, (1, 28, 28), 10),
                                                  (2, (3, 16, 52), 18), (2, (1, 8, 8), 10)])
def test_build_forward_shapes(dims, shape, classes):
    space = DashSpace(dims=dims)
    for a in archs(space, 3):
        net = space.build(a, classes, shape[0], shape[1:])
        assert net(torch.randn(2, *shape)).shape == (2, classes)


def test_build_uses_each_choice_at_its_layer(seq, img):
    for space in (seq, img):
        a = archs(space, 1, seed=3)[0]
        net = space.build(a, 5, 1, (1, 40) if space.dims == 1 else (12, 12))
        convs = net.searchable()
        assert len(convs) == space.n_layers()
        for conv, (k, d) in zip(convs, space.choices(a)):
            assert conv.kernel_size[-1] == k and conv.dilation[-1] == d and conv.bias is None


def test_kind_mismatch_is_one_config_error(seq, img):
    with pytest.raises(ConfigError, match=r"space.dims=1 cannot take this data .*set space.dims=2"):
        seq.build(archs(seq, 1)[0], 10, 1, (28, 28))
    with pytest.raises(ConfigError, match=r"set space.dims=1"):
        img.ops(archs(img, 1)[0], "osuleaf")
    assert seq.kind("osuleaf") == "1d" and img.kind("fashion_mnist") == "2d"


# --- the contract of the DASH searcher -------------------------------------------------------------

@pytest.mark.parametrize("kind, shape", [("1d", (2, 1, 30)), ("2d", (2, 3, 9, 9))])
def test_factory_is_called_in_layer_order_with_the_slots(kind, shape):
    calls = []

    def factory(i, c_in, c_out, stride):
        calls.append((i, c_in, c_out, stride))
        return fixed_conv(kind, c_in, c_out, 3, 1, stride)

    net = build_backbone(kind, shape[1], 4, factory, width=4, depth=2)
    slots = conv_slots(kind, shape[1], 4, 2)
    assert calls == [(i, s.c_in, s.c_out, s.stride) for i, s in enumerate(slots)]
    x = torch.randn(*shape)
    assert net(x if kind == "2d" else x.unsqueeze(2)).shape == (2, 4)


@pytest.mark.parametrize("kind, size", [("1d", 31), ("2d", 15)])
def test_fixed_conv_keeps_same_size_and_strides_to_ceil(kind, size):
    for k in (3, 5, 9):
        for d in (1, 3, 7):
            for stride in (1, 2):
                conv = fixed_conv(kind, 2, 3, k, d, stride)
                x = torch.randn(1, 2, size) if kind == "1d" else torch.randn(1, 2, size, size)
                out = -(-size // stride)
                assert conv(x).shape[2:] == ((out,) if kind == "1d" else (out, out))


def test_conv_spec_is_the_op_the_table_holds(seq, img):
    for space, ds in ((seq, "osuleaf"), (img, "fashion_mnist")):
        shapes = space.layer_shapes(ds)
        assert len(shapes) == space.n_layers(ds)
        a = archs(space, 1, seed=7)[0]
        convs = [o for o in space.ops(a, ds) if o.op.startswith("conv")]
        assert convs == [space.conv_spec(i, k, d, ds) for i, (k, d) in enumerate(space.choices(a))]
    spec = seq.conv_spec(0, 7, 3, "osuleaf")
    assert (spec.op, spec.h, spec.w, dict(spec.extra)) == ("conv1d", 1, 427, {"k": 7, "d": 3})
    assert [s[2:4] for s in img.layer_shapes("fashion_mnist")][-1] == (14, 14)  # strides 1, 2, 2 (conv2)
    with pytest.raises(HwnasError, match="searchable layers 0..8, not 9"):
        seq.conv_spec(9, 3, 1, "osuleaf")


# --- operations -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dims, ds", [(1, "osuleaf"), (2, "fashion_mnist")])
def test_ops_cover_every_layer_and_distinct_ops_hold_every_archs_ops(dims, ds):
    space = DashSpace(dims=dims)
    distinct = space.distinct_ops(ds)
    keys = {s.key for s in distinct}
    assert len(keys) == len(distinct)
    for a in archs(space, 15):
        ops = space.ops(a, ds)
        assert {s.key for s in ops} <= keys
        assert sum(o.op.startswith("conv") for o in ops) == space.n_layers()
    # The op modules, run in a row (shortcut projections set aside), give the network's output shape.
    a = archs(space, 1, seed=5)[0]
    h = torch.randn(1, *space.input_shape(ds))
    for spec in space.ops(a, ds):
        module, shape = space.op_module(spec)
        if spec.op.startswith("proj"):
            assert tuple(module.eval()(torch.randn(1, *shape)).shape[1:2]) == (spec.c_out,)
            continue
        assert tuple(h.shape[1:]) == shape
        h = module.eval()(h)
    assert h.shape == (1, space.num_classes(ds))


def test_onnx_export_of_1d_and_2d_networks_matches_torch(tmp_path):
    from hwnas.onnx_io import export_onnx, ort_session

    for dims, shape in ((1, (1, 1, 427)), (2, (1, 28, 28))):
        space = DashSpace(dims=dims)
        a = space.from_choices([(9, 15)] + [(5, 3)] * (space.n_layers() - 1))
        torch.manual_seed(0)
        net = space.build(a, 6, shape[0], shape[1:]).eval()
        inp = torch.randn(3, *shape)
        path = tmp_path / f"m{dims}.onnx"
        export_onnx(net, inp, path)
        import onnx

        convs = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
        dil = [list(a.ints) for n in convs for a in n.attribute if a.name == "dilations"]
        assert [15] in dil or [15, 15] in dil  # dilated convolutions stay plain Conv nodes
        sess = ort_session(path)
        got = sess.run(None, {sess.get_inputs()[0].name: inp.numpy()})[0]
        with torch.no_grad():
            want = net(inp).numpy()
        assert got.shape == (3, 6) and np.allclose(got, want, atol=1e-4)


def test_op_names_are_not_anothers():
    with pytest.raises(HwnasError, match="no operation 'mbconv'"):
        from hwnas.spaces.base import OpSpec

        DashSpace(dims=1).op_module(OpSpec("mbconv", 1, 1, 1, 1))


def test_registered_and_in_the_protocol():
    assert SPACES.get("dash") is DashSpace
    from hwnas.spaces.base import is_profilable

    assert is_profilable(DashSpace()) and str(DashArch(((3, 1), (5, 7)))) == "k3d1-k5d7"


# --- latency: a real profile, a synthetic table, searches and export ----------------------------------

def test_real_profile_times_every_candidate_conv_and_predicts(tmp_path):
    """hwnas-profile space=dash on a small sequence geometry, tiny settings: every op timed for real,
    and the searcher's conv_spec keys are the table's."""
    from hwnas.apps.profile import run_profile
    from hwnas.latency.profiled import load_model
    from hwnas.profiling.config import ProfileConfig, RunnerConfig

    ds = "npz-1x1x64-c3"
    space = DashSpace(dims=1, width=4, kernels=[3, 9], dilations=[1, 7])
    cfg = ProfileConfig(runner=RunnerConfig(name="ort_cpu"), space="dash", dataset=ds, warmup=1, repeats=3,
                        e2e_repeats=3, calibrate=3, validate=2, out_dir=str(tmp_path), progress=False, plot=False)
    rep = run_profile(cfg, space)
    model = load_model(rep.path, space, check_machine=False)
    keys = set(model.table.entries)
    for i in range(space.n_layers()):
        for k, d in space.candidates:
            assert space.conv_spec(i, k, d, ds).key in keys
    pred = model.predict(archs(space, 10))
    assert np.isfinite(pred).all() and (pred > 0).all()


def test_hwnas_profile_builds_the_space_of_the_datasets_kind(monkeypatch, tmp_path):
    """`hwnas-profile space=dash dataset=osuleaf` profiles the 1-D space (dims from the dataset),
    dataset=fashion_mnist the 2-D one (the timing itself is replaced: what is checked is the space)."""
    import hwnas.profiling.profiler as profiler
    from hwnas.apps.profile import run_profile
    from hwnas.profiling.config import ProfileConfig, RunnerConfig

    seen = []

    class Stop(Exception):
        pass

    def fake_profile(space, dataset, *args, **kwargs):
        seen.append((space.kind(dataset), space.n_layers(dataset)))
        raise Stop

    monkeypatch.setattr(profiler, "profile", fake_profile)
    for ds in ("osuleaf", "fashion_mnist"):
        cfg = ProfileConfig(runner=RunnerConfig(name="ort_cpu"), space="dash", dataset=ds, out_dir=str(tmp_path / ds),
                            progress=False, plot=False)
        with pytest.raises(Stop):
            run_profile(cfg)
    assert seen == [("1d", 9), ("2d", 7)]


def dash_table(space, dataset, monkeypatch):
    """A synthetic (not timed) table under this machine's default name in the user's tables."""
    import profile_fixture
    from profile_fixture import synthetic_table

    from hwnas.config import this_machine_table
    from hwnas.latency.table import table_path

    for kind in ("1d", "2d"):
        for op, ms in (("conv", 0.02), ("proj", 0.005), ("head", 0.003)):
            monkeypatch.setitem(profile_fixture.BASE_MS, op + kind, ms)
    name = this_machine_table("dash", dataset, None, space.param_values())
    path = table_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_table(space, path, dataset, calibration=(1.0, 0.0))
    return name


def test_this_machines_table_name_names_the_space_settings_that_are_not_the_defaults():
    """device=this_machine at other dash settings names (so measures) its own table; at the
    defaults the name is hwnas-profile's, unchanged."""
    from hydra import compose, initialize_config_module

    import hwnas.apps.search  # noqa: F401  (stores the config schemas, registers the resolvers)
    from hwnas.config import this_machine_table

    names = {}
    with initialize_config_module("hwnas.conf", version_base=None):
        for extra in ([], ["space.width=64", "space.kernels=[3,7,11]"], ["space.depth=2"]):
            cfg = compose("search", overrides=["space=dash", "dataset=osuleaf", "device=this_machine", *extra])
            names[tuple(extra)] = cfg.device.name
    assert names[()] == this_machine_table("dash", "osuleaf")
    assert names[("space.width=64", "space.kernels=[3,7,11]")] == this_machine_table("dash", "osuleaf") \
        .replace("-dash-", "-dash-width64-kernels3-7-11-")
    assert names[("space.depth=2",)].endswith("-dash-depth2-osuleaf")


def test_a_table_of_other_space_settings_is_refused_naming_the_way_out(monkeypatch):
    """A table loaded for other space settings than it was profiled at (a device.path, or a
    name given by hand) is refused with one line that says how to get a table at these settings."""
    import json

    from hwnas.latency.profiled import load_model
    from hwnas.latency.table import table_path

    name = dash_table(DashSpace(dims=1, width=4), "osuleaf", monkeypatch)
    doc = json.loads(table_path(name).read_text())  # as hwnas-profile records them
    doc["fingerprint"]["space_params"] = {"dims": 1, "width": 4, "depth": 1, "kernels": [3, 5, 7, 9],
                                          "dilations": [1, 3, 7, 15]}
    table_path(name).write_text(json.dumps(doc))
    assert load_model(table_path(name), DashSpace(dims=1, width=4), check_machine=False) is not None
    with pytest.raises(ConfigError, match=r"profiled for space dash with .*'width': 4.*not .*'width': 8.*"
                                          r"device\.name=<new name>"):
        load_model(table_path(name), DashSpace(dims=1, width=8), check_machine=False)


class ArchFunctionAccuracy:
    """TEST DOUBLE for the accuracy only (no training): a fixed function of the architecture, so
    the searchers' mechanics on dash are what is tested; latency is the table's."""

    def __new__(cls, space, budget):
        from hwnas.evaluators.base import Evaluator

        class _Eval(Evaluator):
            def _evaluate(self, arch) -> float:
                v = space.encode(arch, "features")
                return float(60 + 30 * np.tanh(v @ np.linspace(-1, 1, len(v))))

        return _Eval(space, budget)


@pytest.mark.parametrize("name", ["random", "regularized_evolution", "nsga2", "lanas"])
def test_black_box_searchers_run_on_dash(name, seq, monkeypatch):
    from hwnas.config import DeviceConfig
    from hwnas.latency.sources import make_latency_source
    from hwnas.problem import SearchProblem
    from hwnas.search import make_searcher
    from hwnas.search_loop import run_search
    from hwnas.searchers import SEARCHER_CONFIGS

    table = dash_table(seq, "osuleaf", monkeypatch)
    source = make_latency_source(seq, DeviceConfig(name=table, kind="profiled"), "osuleaf", None)
    lat = source.latency(archs(seq, 50))
    assert lat.std() > 0  # kernels cost differently in the table: the objective is not flat
    problem = SearchProblem(seq, source, float(np.median(lat)))
    evals = run_search(problem, ArchFunctionAccuracy(seq, 10), make_searcher(SEARCHER_CONFIGS[name](), problem, 0)).history
    assert len(evals) == 10 and len({e.arch for e in evals}) == 10 and all(isinstance(e.arch, DashArch) for e in evals)


def test_search_with_training_then_export_on_osuleaf(tmp_path, monkeypatch):
    """`hwnas-search space=dash dataset=osuleaf evaluator=train` (device: this machine by default,
    its table synthetic to keep CI fast), then `hwnas-export`: real training, real ONNX checked
    against torch, test accuracy of the ONNX model equal to the search's."""
    import json

    from conftest import export_trained_run, run_app

    space = DashSpace(dims=1, width=4)
    table = dash_table(space, "osuleaf", monkeypatch)
    run = tmp_path / "run"
    r = run_app("space=dash", "space.width=4", "dataset=osuleaf", "evaluator=train", "searcher=random",
                "budget.queries=2", "evaluator.epochs=1", "evaluator.train_subset=48", "output.progress=false",
                "output.plot=false", f"hydra.run.dir={run}", timeout=600)
    assert r.returncode == 0, r.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["space"] == "dash" and summary["device"] == table and summary["queries"] == 2
    config = json.loads((run / "config.json").read_text())["space"]
    assert config == {"name": "dash", "dims": 1, "width": 4, "depth": 1, "kernels": [3, 5, 7, 9],
                      "dilations": [1, 3, 7, 15]}
    models, front = export_trained_run(run, [1, 1, 427])
    for arch in front:
        space.parse(arch)
    for m in models:
        assert m["accuracy"]["onnx_test_accuracy"] == pytest.approx(front[m["arch"]], abs=0.5)


def test_image_data_on_a_sequence_space_is_one_line(tmp_path):
    from conftest import run_app

    r = run_app("space=dash", "space.dims=1", "dataset=digits", "evaluator=train", "budget.queries=1",
                "output.progress=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "set space.dims=2" in r.stderr.strip().splitlines()[-1]
