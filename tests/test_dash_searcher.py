"""searcher=dash: the Fourier-domain mixed convolution, the supernet search with its latency
penalty, and the run it makes through the ordinary search."""
from __future__ import annotations

import pytest
import torch
from conftest import run_app

from hwnas.searchers.dash_mixed_conv import (
    FourierMixedConv,
    NaiveMixedConv,
    copy_weights,
    mixed_conv,
)

# Odd kernels and dilations mixed; the largest span, 3*(7-1)+1 = 19, exceeds the 2-D input's sides.
CANDIDATES = [(3, 1), (5, 2), (7, 3), (3, 7), (1, 1)]


def _pair(dims: int, stride: int, seed: int = 0):
    torch.manual_seed(seed)
    fourier = FourierMixedConv(dims, 3, 4, CANDIDATES, stride).double()
    naive = NaiveMixedConv(dims, 3, 4, CANDIDATES, stride).double()
    with torch.no_grad():
        fourier.alpha.normal_()  # a non-uniform mixture: a wrong weight per candidate shows
    copy_weights(fourier, naive)
    return fourier, naive


@pytest.mark.parametrize("dims,shape", [(1, (2, 3, 23)), (1, (2, 3, 6)), (2, (2, 3, 12, 9))])
@pytest.mark.parametrize("stride", [1, 2])
def test_fourier_mixture_equals_the_sum_of_candidate_convolutions(dims, shape, stride):
    """Forward and every gradient (input, each candidate's weights, the logits) agree with the
    naive mixture to float64 round-off, odd and even lengths, stride 1 and 2, and inputs shorter
    than the largest span (the kernel is cropped to 2L-1 there)."""
    fourier, naive = _pair(dims, stride)
    x = torch.randn(*shape, dtype=torch.double)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    outs = [m(xi) for m, xi in zip((fourier, naive), xs)]
    assert outs[0].shape == outs[1].shape
    assert outs[0].shape[2:] == tuple(-(-s // stride) for s in shape[2:])  # 'same', then strided
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-10)
    g = torch.randn_like(outs[0])  # a random upstream gradient: every output element counts
    for o in outs:
        o.backward(g)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fourier.alpha.grad, naive.alpha.grad, rtol=1e-9, atol=1e-10)
    assert fourier.alpha.grad.abs().max() > 1e-3  # the logits do get a gradient
    for wf, wn in zip(fourier.weights, naive.weights):
        torch.testing.assert_close(wf.grad, wn.grad, rtol=1e-10, atol=1e-10)


def test_fourier_mixture_float32_and_one_candidate_is_a_plain_conv():
    """In float32 (what training uses) to float tolerance; a single candidate is nn.Conv's output."""
    fourier, naive = _pair(2, 1)
    fourier, naive = fourier.float(), naive.float()
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(fourier(x), naive(x), rtol=1e-4, atol=1e-4)
    one = FourierMixedConv(1, 2, 5, [(5, 3)], stride=2)
    conv = torch.nn.Conv1d(2, 5, 5, stride=2, padding=6, dilation=3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(one.weights[0])
    x = torch.randn(3, 2, 40)
    torch.testing.assert_close(one(x), conv(x), rtol=1e-4, atol=1e-5)


def test_mixed_conv_refuses_bad_candidates():
    with pytest.raises(ValueError, match="kernels must be odd"):
        FourierMixedConv(1, 1, 1, [(4, 1)])
    with pytest.raises(ValueError, match="fourier or naive"):
        mixed_conv("fft", 1, 1, 1, [(3, 1)])


# --- the supernet search -------------------------------------------------------------------------
def synthetic_dash_table(space, path, dataset: str):
    """A latency table for `space` (no timing): each op's latency grows with its multiply-adds
    and its dilation, so every candidate has its own price; calibration a=1, b=0."""
    from hwnas.latency.model import overhead_specs
    from hwnas.latency.table import LatencyTable
    from hwnas.profiling.runners.base import summarize

    ops = space.distinct_ops(dataset)
    fp = {"runner": "synthetic", "space": space.name, "dataset": dataset,
          "input_shape": list(space.input_shape(dataset)),
          "space_params": space.param_values()}
    table = LatencyTable(path, path.stem, fp)
    for s in [*ops, *overhead_specs(ops, tuple(space.input_shape(dataset)))]:
        x = dict(s.extra)
        taps = x.get("k", 1) ** (1 if s.op.endswith("1d") else 2)
        ms = 1e-4 if s.op == "noop" else 1e-6 * s.c_in * s.c_out * s.h * s.w / s.stride ** 2 * taps * (1 + 0.1 * x.get("d", 1)) + 1e-3
        table.add(s, summarize([ms] * 3))
    table.calibration = {"a": 1.0, "b": 0.0, "n": 10}
    table.save()
    return table


def _settings(**kw):
    from hwnas.searchers.dash_supernet import SupernetSettings

    base = dict(epochs=2, warmup_epochs=0, batch_size=16, lr=3e-3, arch_lr=0.1, weight_decay=5e-4,
                mixture="fourier", latency_unit="relative")
    return SupernetSettings(**{**base, **kw})


@pytest.fixture(scope="module")
def seq_task():
    """A tiny 1-D task: the class is the sign of the sum of two far-apart samples."""
    from hwnas.spaces.dash import DashSpace

    space = DashSpace(dims=1, width=2, depth=1, kernels=[3, 5, 7], dilations=[1, 4])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 1, 1, 24, generator=g)
    y = ((x[:, 0, 0, 2] + x[:, 0, 0, 20]) > 0).long()
    return space, x, y


def _run(space, x, y, lam, lat, seed=0, **kw):
    from hwnas.searchers.dash_supernet import build_supernet, search_supernet

    return search_supernet(lambda: build_supernet(space, x.shape[1:], 2, kw.pop("mixture", "fourier")), x, y, lat,
                           lam, _settings(**kw), seed)


def _span_latency(space):
    """Each candidate costs its receptive field (k - 1) * d + 1 (ms), at every layer."""
    from hwnas.searchers.dash_supernet import LatencyModel, candidates_of

    n = space.n_layers()
    delta = torch.tensor([[(k - 1) * d + 1 - 3 for k, d in candidates_of(space)]] * n, dtype=torch.float64)
    return LatencyModel(3.0 * n, delta.numpy())


def test_same_seed_same_search_other_seed_other_weights(seq_task):
    space, x, y = seq_task
    lat = _span_latency(space)
    a, b = _run(space, x, y, 0.0, lat), _run(space, x, y, 0.0, lat)
    assert a.choices == b.choices and a.probs == b.probs and a.trace == b.trace
    c = _run(space, x, y, 0.0, lat, seed=1)
    assert c.probs != a.probs


def test_latency_penalty_moves_every_layer_to_the_cheapest_candidate(seq_task):
    """lambda = 0: the accuracy's choice (not the cheapest here); a large lambda: the cheapest
    candidate at every layer, so the chosen network's latency is strictly smaller."""
    space, x, y = seq_task
    lat = _span_latency(space)
    free, paid = _run(space, x, y, 0.0, lat), _run(space, x, y, 200.0, lat)
    cheapest = lat.base_ms + lat.delta_ms.min(axis=1).sum()
    assert paid.chosen_ms == pytest.approx(cheapest)
    assert paid.chosen_ms < free.chosen_ms
    assert paid.expected_ms < free.expected_ms
    assert all(c == (3, 1) for c in paid.choices)


def test_relative_lambda_means_the_same_on_a_slower_device(seq_task):
    """latency_unit=relative divides by the space's latency range: a device 1000x slower (every
    latency x 1000) gives the very same search; in ms the same lambda pulls 1000x harder."""
    from hwnas.searchers.dash_supernet import LatencyModel

    space, x, y = seq_task
    lat = _span_latency(space)
    slow = LatencyModel(1000 * lat.base_ms, 1000 * lat.delta_ms)
    a, b = _run(space, x, y, 2.0, lat, epochs=1), _run(space, x, y, 2.0, slow, epochs=1)
    assert a.choices == b.choices
    torch.testing.assert_close(torch.tensor(a.probs), torch.tensor(b.probs), rtol=1e-4, atol=1e-6)
    in_ms = _run(space, x, y, 2.0, slow, epochs=1, latency_unit="ms")
    assert in_ms.expected_ms < b.expected_ms


def test_naive_and_fourier_supernets_search_alike(seq_task):
    """The two mixtures are the same function: the same search up to float round-off."""
    space, x, y = seq_task
    lat = _span_latency(space)
    f, n = _run(space, x, y, 0.5, lat, epochs=1), _run(space, x, y, 0.5, lat, epochs=1, mixture="naive")
    assert f.choices == n.choices
    torch.testing.assert_close(torch.tensor(f.probs), torch.tensor(n.probs), rtol=1e-3, atol=1e-4)


def test_candidate_latency_is_the_tables_conv_spec_difference(tmp_path):
    """Through the run's latency source: delta[l, c] = table(conv_spec(l, c)) - table(conv_spec(l, (3, 1)))
    (synthetic table: calibration a=1, no per-call overhead), base = the kernel-3 network's latency."""
    from hwnas.config import DeviceConfig
    from hwnas.latency.sources import make_latency_source
    from hwnas.searchers.dash_supernet import candidate_latency, candidates_of
    from hwnas.spaces.dash import DashSpace

    space = DashSpace(dims=2, width=2, depth=1)
    table = synthetic_dash_table(space, tmp_path / "t.json", "digits")
    source = make_latency_source(space, DeviceConfig(name="t", kind="profiled", path=str(table.path)), "digits", None)
    lat = candidate_latency(space, source.latency, space.n_layers())
    ref = space.from_choices([(3, 1)] * space.n_layers())
    assert lat.base_ms == pytest.approx(float(source.latency([ref])[0]))
    for layer in (0, space.n_layers() - 1):
        for j, (k, d) in enumerate(candidates_of(space)):
            want = table.median(space.conv_spec(layer, k, d, "digits").key) - table.median(
                space.conv_spec(layer, 3, 1, "digits").key)
            assert lat.delta_ms[layer, j] == pytest.approx(want, rel=1e-9, abs=1e-12)


# --- through hwnas-search -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_table(tmp_path_factory):
    from hwnas.spaces.dash import DashSpace

    path = tmp_path_factory.mktemp("table") / "synthetic-dash.json"
    synthetic_dash_table(DashSpace(dims=2, width=2, depth=1), path, "digits")
    return path


def tiny(table) -> list[str]:
    """space=dash searcher=dash on digits, small enough for seconds per network."""
    return ["space=dash", "space.width=2", "searcher=dash", "dataset=digits", "evaluator=train",
            "evaluator.epochs=1", "evaluator.train_subset=300", "searcher.epochs=1", "searcher.train_subset=200",
            "searcher.batch_size=32", "device=profiled", f"device.path={table}", "device.name=synthetic",
            "constraints.latency_ms=inf", "output.progress=false"]


def test_search_writes_the_standard_run_and_a_large_lambda_is_faster(tmp_path, digits_table):
    import json

    from conftest import read_rows

    run = tmp_path / "run"
    r = run_app(f"hydra.run.dir={run}", *tiny(digits_table), "searcher.lambdas=[0,50]")
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("history.csv", "pareto.csv", "summary.json", "pareto.png", "config.json", "dash.json"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["searcher"] == "dash" and summary["queries"] == 2
    assert summary["stop_reason"].startswith("searcher: all 2 lambda")  # not the default budget of 20
    rows = read_rows(run / "history.csv")
    searches = json.loads((run / "dash.json").read_text())["searches"]
    assert [s["lambda"] for s in searches] == [0.0, 50.0]
    assert [r["arch"] for r in rows] == ["-".join(f"k{k}d{d}" for k, d in s["choices"]) for s in searches]
    # the table's latency of the proposed networks: the penalty bought a strictly faster one
    lat = [float(r["latency_ms"]) for r in rows]
    assert lat[1] < lat[0]
    assert lat[1] == pytest.approx(searches[1]["chosen_latency_ms"])  # the searcher's model = the source's
    # resumed from the same run: the searches are read back from dash.json, the same networks
    r2 = run_app(f"hydra.run.dir={run}", *tiny(digits_table), "searcher.lambdas=[0,50]", "resume=true")
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert read_rows(run / "history.csv") == rows


@pytest.mark.parametrize("override,says", [
    ("searcher.lambdas=[]", "searcher.lambdas is empty"),
    ("searcher.lambdas=[0,-1]", "searcher.lambdas must hold finite numbers >= 0"),
    ("budget.queries=1", "budget.queries=1 is less than the 2 values of searcher.lambdas"),
    ("searcher.warmup_epochs=5", "searcher.warmup_epochs must be an integer in [0, searcher.epochs"),
])
def test_bad_config_is_one_clear_line(tmp_path, digits_table, override, says):
    args = tiny(digits_table) + ["searcher.lambdas=[0,1]"]
    r = run_app(f"hydra.run.dir={tmp_path / 'run'}", *args, override)
    assert r.returncode == 2, r.stderr[-2000:]
    assert says in r.stderr and "Traceback" not in r.stderr


def test_dash_needs_its_space_and_a_training_evaluator(tmp_path):
    r = run_app(f"hydra.run.dir={tmp_path / 'a'}", "searcher=dash", "space=nb201", "device=raspi4", "output.progress=false")
    assert r.returncode == 2 and "Use space=dash" in r.stderr and "Traceback" not in r.stderr


def test_data_of_the_other_kind_is_refused_before_any_training(data_dir):
    """A 1-D backbone bound to images (8x8 digits): one ConfigError, from bind_run, before any work."""
    from hwnas.config import DatasetConfig, EvaluatorConfig
    from hwnas.errors import ConfigError
    from hwnas.evaluators import EVALUATORS
    from hwnas.latency.base import LatencySource
    from hwnas.problem import SearchProblem
    from hwnas.searchers.configs import DashConfig
    from hwnas.searchers.dash import DashSearcher
    from hwnas.spaces.dash import DashSpace

    class Flat(LatencySource):
        def latency(self, archs):
            return torch.ones(len(archs)).numpy()

    space = DashSpace(dims=1, width=2, depth=1)
    ev = EVALUATORS.get("train")(space, EvaluatorConfig(name="train", epochs=1), DatasetConfig(name="digits"), 2,
                                 data_dir)
    searcher = DashSearcher(SearchProblem(space, Flat(space, "flat")), DashConfig(lambdas=[0.0]), 0)
    with pytest.raises(ConfigError, match="space.dims=1 cannot take dataset digits.*set space.dims=2"):
        searcher.bind_run(ev)
    with pytest.raises(ConfigError, match="needs the training data"):
        searcher.ask()
