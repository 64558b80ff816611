"""Runners: the CPU one times for real; GPU ones say why they cannot run here (or run, on a GPU)."""
import pytest

from hwnas.profiling.runners import RUNNERS, TimingSettings

GPU_RUNNERS = ("ort_cuda", "ort_trt", "tensorrt")


def test_runners_are_registered():
    assert {"ort_cpu", *GPU_RUNNERS} <= set(RUNNERS.names())


def test_ort_cpu_fingerprint_records_what_latency_depends_on():
    import onnxruntime

    fp = RUNNERS.get("ort_cpu")(TimingSettings(intra_op_threads=2, batch=4)).fingerprint()
    assert fp["runner"] == "ort_cpu" and fp["onnxruntime"] == onnxruntime.__version__
    assert fp["provider"] == "CPUExecutionProvider" and fp["processor"]
    assert fp["intra_op_threads"] == 2 and fp["batch"] == 4 and fp["precision"] == "fp32"
    assert fp["graph_optimization"] == "all" and fp["execution_mode"] == "sequential"
    assert "cpu_governor" in fp  # None where the kernel does not expose it
    assert {"cpu_id", "cpu_isa"} <= set(fp)  # tells apart generations sharing one marketing name
    # A table's fingerprint gives back the settings it was timed with (warm-up and repeats are not in it).
    assert TimingSettings.from_fingerprint(fp) == TimingSettings(intra_op_threads=2, batch=4)


def test_ort_cpu_refuses_fp16():
    ok, why = RUNNERS.get("ort_cpu")(TimingSettings(precision="fp16")).available()
    assert not ok and "fp16" in why


@pytest.mark.parametrize("name", GPU_RUNNERS)
def test_gpu_runner_availability_is_a_bool_and_a_reason(name):
    ok, why = RUNNERS.get(name)(TimingSettings()).available()
    assert isinstance(ok, bool)
    assert ok or why  # unavailable always says why


@pytest.mark.parametrize("name", GPU_RUNNERS)
def test_gpu_runner_times_an_op(name, tmp_path):
    runner = RUNNERS.get(name)(TimingSettings(warmup=2, repeats=5))
    ok, why = runner.available()
    if not ok:
        pytest.skip(f"{name} unavailable: {why}")
    from hwnas.profiling.profiler import export_op
    from hwnas.spaces import NB201Space

    space = NB201Space()
    spec = next(s for s in space.distinct_ops() if s.op == "nor_conv_3x3")
    shape = export_op(space, spec, tmp_path / "op.onnx")
    t = runner.time(tmp_path / "op.onnx", shape)
    assert t.n == 5 and t.median_ms > 0
    assert runner.fingerprint()["runner"] == name
