"""Time whole NAS-Bench-201 architectures end to end: the CSV that `device=fitted` learns from.

Draws n architectures (seeded, uniformly over the space), builds and exports each network to
ONNX, times it with a runner (by default the edge agent, `runner=remote`) and writes
`index, arch, latency_ms, iqr_ms, n`. Then `hwnas-search device=fitted device.path=<csv>`.

    python -m hwnas.profiling.measure --url http://raspberrypi.local:8765 --n 100 --out pi4.csv
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from hwnas.errors import ConfigError, exit_on_user_error
from hwnas.io import write_text_atomic
from hwnas.latency.additive_fit import sample_indices
from hwnas.profiling.runners.base import Runner

COLUMNS = ("index", "arch", "latency_ms", "iqr_ms", "n")


def measure_architectures(space, runner: Runner, indices: Sequence[int], dataset: str = "cifar10",
                          log: Callable[[str], None] = print, seed: int = 0, out: str | os.PathLike | None = None,
                          done: Sequence[dict] = ()) -> list[dict]:
    """One row per architecture index: the runner's median latency (ms) of the whole network.

    Weights are seeded (`seed`; torch's global RNG is untouched). Rows in `done` are kept and
    their indices not timed again; with `out`, the CSV is rewritten atomically after every row,
    so an interrupted run loses at most the architecture being timed.
    """
    from hwnas.profiling.profiler import export_arch

    rows = list(done)
    have = {int(r["index"]) for r in rows}
    todo = [int(i) for i in indices if int(i) not in have]
    batch = runner.settings.batch
    with tempfile.TemporaryDirectory(prefix="hwnas-measure-") as tmp:
        for k, index in enumerate(todo, start=1):
            arch = space.from_index(index)
            path = Path(tmp) / f"{index}.onnx"
            shape = export_arch(space, arch, dataset, path, batch=batch, seed=seed)
            t = runner.time(path, shape)
            path.unlink()
            rows.append({"index": index, "arch": str(arch), "latency_ms": t.median_ms, "iqr_ms": t.iqr_ms,
                         "n": t.n})
            if out is not None:
                write_measurements(out, rows)
            log(f"[{k}/{len(todo)}] {arch}  {t.median_ms:.3f} ms (IQR {t.iqr_ms:.3f})")
    return rows


def write_measurements(path: str | os.PathLike, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def read_measurements(path: str | os.PathLike) -> list[dict]:
    """The rows of an earlier run's CSV (to resume it); [] when there is none."""
    path = Path(path)
    if not path.exists():
        return []
    why = None
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                why = f"its header is {reader.fieldnames}, not {','.join(COLUMNS)}"
            else:
                rows = [{"index": int(r["index"]), "arch": r["arch"], "latency_ms": float(r["latency_ms"]),
                         "iqr_ms": float(r["iqr_ms"]), "n": int(r["n"])} for r in reader]
    except (OSError, UnicodeDecodeError, ValueError, TypeError, csv.Error) as exc:
        why = str(exc) or type(exc).__name__
    if why:
        raise ConfigError(f"--out {path} exists but is not a CSV written by hwnas.profiling.measure ({why}); "
                          f"pass another --out")
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m hwnas.profiling.measure",
                                 description="Time n random NAS-Bench-201 networks end to end; write the CSV of device=fitted.")
    ap.add_argument("--out", required=True, help="CSV to write (index, arch, latency_ms, iqr_ms, n)")
    ap.add_argument("--n", type=int, default=100, help="architectures to time (50-100 fit well)")
    ap.add_argument("--seed", type=int, default=0, help="which architectures (and the input)")
    ap.add_argument("--runner", default="remote", help="registered runner (default: the edge agent)")
    ap.add_argument("--url", help="remote: the agent's address, http://<device>:8765")
    ap.add_argument("--token", help="remote: the agent's token (default: $HWNAS_AGENT_TOKEN)")
    ap.add_argument("--provider", default="cpu", help="remote: cpu | cuda | tensorrt")
    ap.add_argument("--dataset", default="cifar10", help="whose network (input shape, classes)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads")
    ap.add_argument("--channels", type=int, default=16, help="network width (the benchmark's: 16)")
    ap.add_argument("--cells", type=int, default=5, help="cells per stage (the benchmark's: 5)")
    ap.add_argument("--data-dir", default=None, help="benchmark files (default: $HWNAS_DATA_DIR)")
    return ap.parse_args(argv)


@exit_on_user_error
def main(argv=None, log: Callable[[str], None] = print) -> None:
    a = parse_args(argv)
    from hwnas.data.nb201 import N_ARCHS
    from hwnas.data.paths import resolve_data_dir
    from hwnas.profiling.runners import RUNNERS, TimingSettings
    from hwnas.spaces import NB201Space

    if not 1 <= a.n <= N_ARCHS:
        raise ConfigError(f"--n {a.n}: the number of architectures to time must be in 1..{N_ARCHS}")
    if a.repeats < 1 or a.warmup < 0 or a.threads < 1:
        raise ConfigError("--repeats and --threads must be >= 1, --warmup >= 0")
    done = read_measurements(a.out)  # resume: an interrupted run's rows are kept, not timed again
    space = NB201Space(data_dir=resolve_data_dir(a.data_dir), channels=a.channels, cells_per_stage=a.cells)
    settings = TimingSettings(warmup=a.warmup, repeats=a.repeats, intra_op_threads=a.threads)
    options = {"seed": a.seed}
    if a.runner == "remote":
        if not a.url:
            raise ConfigError("--url http://<device>:8765 is required: where profiling/agent.py listens "
                              "(profiling/README.md)")
        options.update(url=a.url, token=a.token, provider=a.provider)
    runner = RUNNERS.get(a.runner)(settings, **options)
    ok, why = runner.available()
    if not ok:
        raise ConfigError(f"runner {a.runner} cannot time: {why}")
    if done:
        log(f"resuming {a.out}: {len(done)} architectures already timed are kept")
    try:
        rows = measure_architectures(space, runner, sample_indices(N_ARCHS, a.n, a.seed), a.dataset, log,
                                     seed=a.seed, out=a.out, done=done)
    finally:
        runner.close()
    write_measurements(a.out, rows)
    log(f"wrote {a.out}: {len(rows)} architectures; use it with "
        f"hwnas-search device=fitted device.path={a.out} device.name=<name>")


if __name__ == "__main__":
    main(sys.argv[1:])
