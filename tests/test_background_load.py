"""benchmarks/latency_settings.py --load: the busy processes it runs beside the profiles."""
import os
import time

from benchmarks.latency_settings import background_load


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]  # R running, S sleeping, T stopped, ...


def _busy_pids() -> set[int]:
    """This process's busy children (other test workers run their own)."""
    pids = set()
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                busy = f.read().endswith(b"while True: pass\x00")
            with open(f"/proc/{d}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if busy and parent == os.getpid():
            pids.add(int(d))
    return pids


def test_steady_load_runs_one_busy_process_per_core_and_ends_them():
    with background_load("steady"):
        time.sleep(0.3)
        mine = _busy_pids()
        assert len(mine) == (os.cpu_count() or 1)
        assert all(_state(p) in "RS" for p in mine)
    assert mine and not _busy_pids()


def test_burst_load_stops_and_resumes_its_processes_in_phases():
    seen = set()
    with background_load("burst", on_s=0.2, off_s=0.2):
        time.sleep(0.05)
        mine = _busy_pids()
        for _ in range(40):
            seen |= {_state(p) for p in mine}
            time.sleep(0.03)
    assert "T" in seen and seen & {"R", "S"}  # stopped in the off phases, running in the on ones
    assert mine and not _busy_pids()


def test_no_load_starts_nothing():
    with background_load("none"):
        assert not _busy_pids()
