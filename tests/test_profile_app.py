"""hwnas-profile as users run it: a Hydra app in a subprocess, tiny settings."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["repeats=2", "warmup=1", "e2e_repeats=2", "calibrate=2", "validate=3", "progress=false"]


def run_app(*args, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "hwnas.apps.profile", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_profile_writes_a_table_then_resumes_without_measuring(tmp_path):
    r = run_app(f"out_dir={tmp_path}", "device=tiny", *TINY)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "tiny.json"
    assert f"latency table {path}: 22 operations + 4 per-call overhead probes" in r.stdout
    assert "validation on 3 other architectures, calibrated: Kendall tau" in r.stdout
    assert "hwnas-search device=profiled device.name=tiny" in r.stdout
    table = json.loads(path.read_text())
    assert table["fingerprint"]["runner"] == "ort_cpu" and table["fingerprint"]["input_shape"] == [3, 32, 32]
    assert (tmp_path / "tiny.png").is_file()
    # every timing was scaled by the reference clock, and the validation architectures were timed twice
    clock = table["clock"]
    light, heavy = clock["levels_ms"]
    assert light > 0 and heavy > 0 and clock["drift"]["rounds"] > 0 and len(clock["references"]) == 2
    rechecked = [e for e in table["e2e"].values() if "recheck_median_ms" in e]
    assert len(rechecked) == 3 and table["noise"]["e2e_rechecked"] == 3
    assert all(e["speed"] > 0 and e["raw_median_ms"] > 0 for e in table["e2e"].values())
    assert "timed again minutes later" in r.stdout
    again = run_app(f"out_dir={tmp_path}", "device=tiny", *TINY)
    assert again.returncode == 0, again.stderr
    assert "(0 measured now, 0 whole architectures timed end to end now, 0 timed runs)" in again.stdout
    assert json.loads(path.read_text())["clock"]["levels_ms"] == clock["levels_ms"]  # resumed in the same units
    # other settings, same table name: refused, nothing mixed
    clash = run_app(f"out_dir={tmp_path}", "device=tiny", "threads=2", *TINY)
    assert clash.returncode == 2 and "intra_op_threads: 1 != 2" in clash.stderr and "Traceback" not in clash.stderr
    # a truncated table: one clear line
    path.write_text(path.read_text()[:100])
    bad = run_app(f"out_dir={tmp_path}", "device=tiny", *TINY)
    assert bad.returncode == 2 and "corrupt or truncated" in bad.stderr and "Traceback" not in bad.stderr


def test_unknown_and_unavailable_runners_exit_2_with_a_reason(tmp_path):
    r = run_app("runner=nope", f"out_dir={tmp_path}")
    assert r.returncode == 2 and "unknown runner 'nope'" in r.stderr and "ort_cpu" in r.stderr
    from hwnas.profiling.runners import RUNNERS, TimingSettings

    ok, why = RUNNERS.get("ort_cuda")(TimingSettings()).available()
    if ok:  # a GPU machine: nothing to refuse
        return
    r = run_app("runner=ort_cuda", f"out_dir={tmp_path}")
    assert r.returncode == 2 and "runner ort_cuda cannot run here" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_public_device_name_is_refused(tmp_path):
    # conf/device/raspi4.yaml is the public benchmark column: a table named so would never be searched.
    r = run_app(f"out_dir={tmp_path}", "device=raspi4", *TINY)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "device name 'raspi4' is a public benchmark device in hwnas/conf/device/; choose another name" in r.stderr
    assert not list(tmp_path.iterdir())  # nothing measured or written


def test_threads_0_profiles_with_every_core_and_clock_off_times_without_a_reference(tmp_path):
    r = run_app(f"out_dir={tmp_path}", "threads=0", "clock=false", "validate=0", "calibrate=0", "plot=false",
                *[a for a in TINY if not a.startswith(("calibrate", "validate"))])
    assert r.returncode == 0, r.stderr
    (path,) = tmp_path.glob("*.json")
    table = json.loads(path.read_text())
    assert f"-t{os.cpu_count()}-b1" in path.name and table["fingerprint"]["intra_op_threads"] == os.cpu_count()
    assert table["clock"] is None and table["settings"]["clock"] is False
