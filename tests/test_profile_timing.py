"""One timing loop (hwnas/timing.py) for runners, export and TensorRT; interleaved
rounds; re-timing of noisy timings; the noise level stored in the table."""
from pathlib import Path

import numpy as np
import pytest

from hwnas.profiling.runners.base import Runner, TimingSettings
from hwnas.timing import round_sizes, split_half_rel_diff, summarize, time_interleaved


def test_interleaved_rounds_hit_every_model_alike():
    log = []
    clock_t = [0.0]
    burst = {"on": False}

    def make(name, ms):
        def run():
            log.append(name)
            # a burst of load during the 2nd round slows whatever runs then
            clock_t[0] += ms * (3.0 if burst["on"] else 1.0) / 1e3
        return run

    calls = [0]

    def clock():
        calls[0] += 1
        burst["on"] = 2 * 4 * 2 <= calls[0] < 2 * 4 * 4  # the second round (4 runs x 2 models x 2 reads)
        return clock_t[0]

    per = time_interleaved([make("a", 1.0), make("b", 2.0)], warmup=1, repeats=12, rounds=3, clock=clock)
    assert log[:2] == ["a", "b"]  # warm-up, then rounds
    assert log[2:] == ["a"] * 4 + ["b"] * 4 + ["a"] * 4 + ["b"] * 4 + ["a"] * 4 + ["b"] * 4
    assert [len(r) for r in per[0]] == round_sizes(12, 3) == [4, 4, 4]
    # the burst (round 2) slowed both models, not one: their ratio of medians is the truth
    med = [np.median(np.concatenate(p)) for p in per]
    assert med[1] / med[0] == pytest.approx(2.0)
    assert split_half_rel_diff([np.array([1.0, 1.0]), np.array([1.2, 1.2])]) == pytest.approx(0.2 / 1.1, rel=0.1)


class Scripted(Runner):
    """A runner whose models return scripted ms (self-timed): noisy on the first attempt."""
    name = "scripted"

    def __init__(self, settings, noisy):
        super().__init__(settings)
        self.noisy, self.prepared = noisy, 0

    def fingerprint(self):
        return {"runner": self.name}

    def prepare(self, onnx_path, input_shape):
        rng = np.random.default_rng(len(str(onnx_path)))
        state = {"n": 0}
        noisy = str(onnx_path) in self.noisy

        def run():
            state["n"] += 1
            # first attempt (warm-up 0, 10 repeats) is noisy for the noisy model, then calm
            spread = 0.8 if noisy and state["n"] <= 10 else 0.01
            return 1.0 + spread * rng.random()
        return run, True


def test_noisy_timings_are_retimed_up_to_a_bound():
    r = Scripted(TimingSettings(warmup=0, repeats=10), noisy={"m1"})
    out = r.time_many([(Path("m0"), (1,)), (Path("m1"), (1,))], rounds=2, retime_rel_iqr=0.1, max_retimes=2)
    (t0, x0), (t1, x1) = out
    assert x0["retimed"] == 0 and x1["retimed"] == 1 and x1["rounds"] == 2
    assert t1.rel_iqr < 0.1 and t1.n == 10  # the calm re-measure was kept
    assert x0["split_half_rel_diff"] is not None


def test_export_times_with_the_profiler_runner(tmp_path, monkeypatch):
    import torch

    from hwnas.export import checks
    from hwnas.onnx_io import export_onnx
    from hwnas.profiling.runners.ort_cpu import OrtCpuRunner

    path = tmp_path / "m.onnx"
    export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval(), torch.zeros(1, 3, 8, 8), path)
    seen = []
    orig = OrtCpuRunner.time_many

    def spy(self, models, *a, **kw):
        seen.append(self.settings)
        return orig(self, models, *a, **kw)

    monkeypatch.setattr(OrtCpuRunner, "time_many", spy)
    lat = checks.time_onnx(path, (3, 8, 8), warmup=1, repeats=6, threads=1, graph_optimization="basic")
    assert len(seen) == 1 and seen[0].repeats == 6 and seen[0].graph_optimization == "basic"
    assert lat["n"] == 6 and lat["runner"] == "ort_cpu" and lat["graph_optimization_level"] == "ORT_ENABLE_BASIC"
    assert lat["median"] > 0 and lat["rounds"] >= 1


def test_export_uses_the_table_settings_when_profiled_here(nb201, tmp_path, monkeypatch):
    from profile_fixture import synthetic_table

    from hwnas.export import pipeline
    from hwnas.latency import profiled

    t = synthetic_table(nb201, tmp_path / "dev.json")
    t.fingerprint.update(runner="ort_cpu", intra_op_threads=2, inter_op_threads=1, graph_optimization="extended")
    t.save()
    monkeypatch.setattr(profiled, "this_machine_fingerprint", lambda table: dict(table.fingerprint))
    same = pipeline.table_timing("dev", str(t.path), "profiled")
    assert same == {"threads": 2, "inter_op_threads": 1, "graph_optimization": "extended", "table": str(t.path)}
    monkeypatch.setattr(profiled, "this_machine_fingerprint", lambda table: {**table.fingerprint, "processor": "x"})
    assert pipeline.table_timing("dev", str(t.path), "profiled") is None  # another machine: not comparable
    assert pipeline.table_timing("raspi4", None, "benchmark") is None


def test_tensorrt_engine_time_goes_through_the_shared_loop(monkeypatch):
    from hwnas import timing
    from hwnas.profiling import tensorrt_engine

    calls = []
    monkeypatch.setattr(timing, "time_callable", lambda run, w, r, self_timed=False: calls.append((w, r, self_timed))
                        or np.ones(r))
    fake = object.__new__(tensorrt_engine.EngineRunner)
    monkeypatch.setattr(tensorrt_engine.EngineRunner, "step_fn", lambda self, x: (lambda: 1.0))
    assert fake.time(np.zeros(1), 2, 5) == [1.0] * 5 and calls == [(2, 5, True)]


def test_noise_is_stored_and_shown_in_the_verdict(tmp_path):
    from hwnas.latency.table import LatencyTable
    from hwnas.latency.verdict import table_verdict, verdict_line
    from hwnas.profiling.profiler import measure_noise

    t = LatencyTable(tmp_path / "n.json", "n", {"runner": "x"})
    t.add_e2e("a", summarize([1.0, 1.1, 0.9, 1.0]))
    t.e2e["a"]["split_half_rel_diff"] = 0.08
    noise = measure_noise(t)
    assert noise["e2e_split_half_rel_diff_median"] == pytest.approx(0.08) and noise["rounds"] >= 1
    t.noise = noise
    assert "halves of a timing differ by 8.0%" in verdict_line(table_verdict(t))
    t.e2e["a"]["recheck_median_ms"] = 1.3  # timed again later: 30% off
    t.clock = {"drift": {"speed_p10": 0.8, "speed_p50": 1.0, "speed_p90": 1.5, "rounds": 40}}
    noise = measure_noise(t)
    assert noise["e2e_recheck_rel_diff_median"] == pytest.approx(0.3) and noise["e2e_recheck_within_10pct"] == 0.0
    assert noise["machine_speed_p10_p90"] == [0.8, 1.5]
    assert noise["e2e_recheck_kendall_tau"] is None  # one architecture orders nothing
    assert t.measured_ms("a") == pytest.approx(1.15)  # a re-checked architecture: the mean of its two timings
    for name, first, second in (("b", 2.0, 2.1), ("c", 3.0, 2.9), ("d", 4.0, 4.0)):
        t.add_e2e(name, summarize([first] * 3))
        t.e2e[name]["recheck_median_ms"] = second
    t.add_e2e("e", summarize([5.0] * 3))  # timed once
    assert t.measured_ms("e") == 5.0
    noise = measure_noise(t)
    assert noise["e2e_recheck_kendall_tau"] == pytest.approx(1.0) and noise["e2e_rechecked"] == 4
    t.noise = noise
    assert "order alike at Kendall tau 1.000" in verdict_line(table_verdict(t))


def test_reference_clock_scales_each_round_by_the_machine_speed():
    """Rounds where the reference ran 1.5x slower are scaled back: a model slowed alike reads its
    quiet speed in every round, and the drift is reported."""
    from hwnas.timing import ReferenceClock

    clock = ReferenceClock(levels_ms=[2.0])
    ref = [np.full(3, 2.0), np.full(3, 3.0), np.full(3, 2.0)]  # round 1: machine 1.5x slower
    model = [np.full(5, 1.0), np.full(5, 1.5), np.full(5, 1.0)]
    (out,), (applied,) = clock.correct([model], [ref])
    assert np.allclose(np.concatenate(out), 1.0) and applied == pytest.approx(1.0)
    assert clock.speeds == [1.0, 1.5, 1.0]
    d = clock.drift()
    assert d["speed_p50"] == pytest.approx(1.0) and d["speed_p90"] > 1.3 and d["rounds"] == 3
    first = ReferenceClock()  # no level yet: the first batch's reference median sets it
    first.correct([model], [ref])
    assert first.levels_ms == [pytest.approx(2.0)]


def test_two_reference_clock_scales_each_model_by_the_slowdown_at_its_own_level():
    """The heavy reference slows 1.6x, the light one 1.1x in round 1: a model as heavy as the heavy
    one is scaled by 1.6, one as light as the light one by 1.1, one halfway (in logs) in between
    by their geometric mean, and models beyond either level by that level's slowdown."""
    from hwnas.timing import ReferenceClock

    light = [np.full(3, 1.0), np.full(3, 1.1), np.full(3, 1.0)]
    heavy = [np.full(3, 4.0), np.full(3, 6.4), np.full(3, 4.0)]
    clock = ReferenceClock(levels_ms=[1.0, 4.0])

    def slowed(level, factor):
        return [np.full(5, level), np.full(5, level * factor), np.full(5, level)]

    models = [slowed(4.0, 1.6), slowed(1.0, 1.1), slowed(2.0, np.sqrt(1.1 * 1.6)), slowed(0.2, 1.1), slowed(9.0, 1.6)]
    out, applied = clock.correct(models, [light, heavy])
    for rounds, level in zip(out, (4.0, 1.0, 2.0, 0.2, 9.0)):
        assert np.allclose(np.concatenate(rounds), level, rtol=1e-9)
    assert clock.speeds[1] == pytest.approx(np.sqrt(1.1 * 1.6))  # the drift: the references' mean
    assert all(v == pytest.approx(1.0) for v in applied)  # median over the rounds: the quiet ones
    with pytest.raises(ValueError, match="3 references for a clock of 2 levels"):
        clock.correct(models, [light, heavy, heavy])


def test_first_calls_caps_the_reference_runs_per_round():
    calls = {"ref": 0, "m": 0}

    def make(name):
        def run():
            calls[name] += 1
        return run

    per = time_interleaved([make("ref"), make("m")], warmup=0, repeats=40, rounds=4, first_calls=3)
    assert [len(r) for r in per[0]] == [3] * 4 and [len(r) for r in per[1]] == [10] * 4
    assert calls == {"ref": 12, "m": 40}
    calls.update(ref=0, heavy=0, m=0)  # two references: both capped, the model not
    per = time_interleaved([make("ref"), make("heavy"), make("m")], warmup=0, repeats=40, rounds=4, first_calls=3,
                           first_models=2)
    assert [sum(len(r) for r in p) for p in per] == [12, 12, 40] and calls == {"ref": 12, "heavy": 12, "m": 40}


def test_recheck_reuses_the_first_pass_export(nb201, tmp_path, monkeypatch):
    """The validation architectures' re-check minutes later times the very models of the first
    pass, kept in memory, instead of exporting them again (an export costs half a timing)."""
    from profile_fixture import synthetic_table

    from hwnas.profiling import profiler
    from hwnas.profiling.runners.ort_cpu import OrtCpuRunner

    archs = profiler.sample_archs(nb201, 3, 0)
    table = synthetic_table(nb201, tmp_path / "t.json")
    exported = []
    orig = profiler.export_arch
    monkeypatch.setattr(profiler, "export_arch", lambda *a, **k: exported.append(str(a[1])) or orig(*a, **k))
    runner = OrtCpuRunner(TimingSettings(warmup=1, repeats=2))
    kept = dict.fromkeys(map(str, archs[1:]))
    assert profiler.time_archs(nb201, "cifar10", runner, table, archs, tmp_path, progress=False, kept=kept) == 3
    assert exported == [str(a) for a in archs] and all(isinstance(kept[str(a)][0], bytes) for a in archs[1:])
    again = profiler.time_archs(nb201, "cifar10", runner, table, archs[1:], tmp_path, progress=False, recheck=True,
                                kept=kept)
    assert again == 2 and len(exported) == 3  # nothing exported for the re-check
    assert all(table.e2e[str(a)]["recheck_median_ms"] > 0 for a in archs[1:])
    assert "recheck_median_ms" not in table.e2e[str(archs[0])]
