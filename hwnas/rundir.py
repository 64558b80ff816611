"""The run directory of `hwnas-search`: its file names, config.json, history.csv written as it
goes and read back to resume, and the whole directory read back for `hwnas-export`.

config.json is the one record of what was searched (the full resolved config): export
rebuilds the network from it alone, never from Hydra's optional `.hydra/` folder.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Sequence

from hwnas.errors import DataError, HwnasError
from hwnas.io import write_json_atomic, write_text_atomic
from hwnas.problem import Evaluation
from hwnas.spaces.base import Arch, SearchSpace

HISTORY, PARETO, SUMMARY, PLOT, CONFIG = "history.csv", "pareto.csv", "summary.json", "pareto.png", "config.json"
RUN_FILES = (HISTORY, PARETO, SUMMARY, PLOT, CONFIG)
RERUN = "re-run the search with this version of hwnas"

BASE_COLUMNS = ["query", "arch", "index", "accuracy", "latency_ms", "feasible"]


def columns(with_energy: bool) -> list[str]:
    return BASE_COLUMNS + (["energy_mj"] if with_energy else [])


def row_of(query: int, ev: Evaluation, index: int | None) -> list[str]:
    # repr() of a float is exact and stable, so the same run gives the same bytes.
    # A failed evaluation has no accuracy: its cell stays empty (read back as NaN).
    row = [str(query), str(ev.arch), "" if index is None else str(index), "" if ev.failed else repr(ev.accuracy),
           repr(ev.latency_ms), "true" if ev.feasible else "false"]
    if ev.energy_mj is not None:
        row.append(repr(ev.energy_mj))
    return row


def _line(cells: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


class HistoryWriter:
    """Appends one flushed line per accuracy query, so a killed run loses nothing it paid for."""

    def __init__(self, path: Path, with_energy: bool, keep_rows: int = 0):
        self.path = path
        self.cols = columns(with_energy)
        # Rewrite the kept prefix atomically (drops a torn last line), then append.
        kept = read_history_lines(path)[:keep_rows] if keep_rows else []
        write_text_atomic(path, _line(self.cols) + "".join(kept))
        self._fh = open(path, "a", encoding="utf-8", newline="")

    def append(self, query: int, ev: Evaluation, index: int | None) -> None:
        self._fh.write(_line(row_of(query, ev, index)))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


FAILURES = "failures.jsonl"


class FailureLog:
    """Why each failed query failed (history.csv leaves its accuracy empty): a JSON line each,
    appended as it happens, so a resumed run still knows why."""

    def __init__(self, run_dir: Path, keep_queries: int = 0):
        self.path = Path(run_dir) / FAILURES
        kept = [r for r in self._records(self.path) if r.get("query", 0) <= keep_queries]
        if kept or self.path.exists():
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, query: int, arch: Arch, attempts: int, reason: str) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"query": query, "arch": str(arch), "attempts": attempts, "reason": reason}) + "\n")
            fh.flush()

    @staticmethod
    def _records(path: Path) -> list[dict]:
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill
            if isinstance(rec, dict):
                out.append(rec)
        return out

    @classmethod
    def read(cls, run_dir: Path, queries: set[int]) -> list[dict]:
        """The records of the given (failed) query numbers."""
        return [r for r in cls._records(Path(run_dir) / FAILURES) if r.get("query") in queries]


def read_history_lines(path: Path) -> list[str]:
    """Complete data lines of a history file (a line torn by a kill is dropped)."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
    return lines[1:]


def read_history(path: Path, space: SearchSpace) -> list[tuple[Arch, float]]:
    """(arch, accuracy) of each complete row of history.csv, in query order (NaN: failed)."""
    out: list[tuple[Arch, float]] = []
    for k, line in enumerate(read_history_lines(path)):
        try:
            cells = next(csv.reader([line]))
            query, arch_s = int(cells[0]), cells[1]
            acc = float(cells[3]) if cells[3] != "" else math.nan  # empty: the evaluation failed
        except (ValueError, IndexError, StopIteration):
            raise DataError(f"{path}, line {k + 2}: malformed history row {line.strip()!r}; "
                            f"remove the run dir to start over") from None
        if query != k + 1:
            raise DataError(f"{path}, line {k + 2}: query {query}, expected {k + 1}")
        try:
            out.append((space.parse(arch_s), acc))
        except HwnasError as exc:
            raise DataError(f"{path}, line {k + 2}: {exc}") from None
    return out


def write_rows_csv(path: Path, with_energy: bool, rows: Sequence[tuple[int, Evaluation, int | None]],
                   extra: dict[str, Sequence[float]] | None = None) -> None:
    """`extra`: more columns, one value per row (e.g. the front's test_accuracy after training)."""
    extra = extra or {}
    text = _line(columns(with_energy) + list(extra)) + "".join(
        _line(row_of(q, ev, i) + [repr(float(v[k])) for v in extra.values()]) for k, (q, ev, i) in enumerate(rows))
    write_text_atomic(path, text)



# --- config.json -------------------------------------------------------------------------

def config_record(cfg: Any) -> dict:
    """The search config as config.json stores it: everything that decides the result."""
    from hwnas.spaces import SPACES

    rec = asdict(cfg) if is_dataclass(cfg) else dict(cfg)
    rec = json.loads(json.dumps(rec, default=lambda o: asdict(o) if is_dataclass(o) else str(o)))
    for key in ("resume", "output", "ray"):  # where it runs decides nothing of the result
        rec.pop(key, None)
    rec["data_dir"] = None  # where the data lives may move between runs; what it holds may not
    space = rec.get("space")
    if isinstance(space, dict) and space.get("name") in SPACES:
        # only the space's own parameters: another space's fields decide nothing here
        keep = {"name", *SPACES.get(space["name"]).params}
        rec["space"] = {k: v for k, v in space.items() if k in keep}
    return rec


def write_config(run_dir: Path, record: dict) -> None:
    write_json_atomic(run_dir / CONFIG, record)


def read_config(run_dir: Path) -> dict | None:
    """config.json as a dict; None when absent. A corrupt file is a DataError."""
    path = run_dir / CONFIG
    return _read_json_object(path, RERUN) if path.is_file() else None


def _read_json_object(path: Path, fix: str) -> dict:
    """A JSON object from `path`; a corrupt file or another JSON type is a DataError ending in `fix`."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: corrupt JSON ({exc}); {fix}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(obj).__name__}; {fix}")
    return obj


def space_param_names(space: str = "nb201") -> list[str]:
    """Constructor parameters of space `space`, as the search passes them (its `params`: SpaceConfig fields)."""
    from hwnas.spaces import SPACES

    return list(SPACES.get(space).params)


def check_rebuildable(run_dir: Path, cfg: dict | None) -> None:
    """Refuse a run whose config.json cannot rebuild exactly the searched network."""
    from hwnas.spaces import SPACES

    path = run_dir / CONFIG
    if cfg is None:
        raise HwnasError(f"{path} is missing, so the searched network (space size, dataset) cannot be rebuilt "
                         f"exactly; the run was made by an older hwnas or its files were moved: {RERUN}")
    space, dataset = cfg.get("space"), cfg.get("dataset")
    name = space.get("name") if isinstance(space, dict) else None
    if name is not None and name not in SPACES:
        raise DataError(f"{path}: space {name!r} is not a search space of this hwnas (known: "
                        f"{', '.join(SPACES.names())}); export with the hwnas that made the run, or {RERUN}")
    missing = []
    for section, keys in (("space", ["name", *(space_param_names(name) if name else [])]), ("dataset", ["name"])):
        sec = cfg.get(section)
        missing += [f"{section}.{k}" for k in keys if not isinstance(sec, dict) or sec.get(k) is None]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}, so the searched network cannot be rebuilt "
                        f"exactly; {RERUN}")
    for key, typ in SPACES.get(name).params.items():
        value = space[key]
        if typ is tuple:  # a list of positive integers (dash's kernel and dilation sets)
            if not (isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool)
                                                              and v > 0 for v in value)):
                raise DataError(f"{path}: space.{key}={value!r} is not a list of positive integers; {RERUN}")
            continue
        kinds = (int, float) if typ is float else (typ,)
        if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
            raise DataError(f"{path}: space.{key}={value!r} is not a positive {'integer' if typ is int else 'number'}; "
                            f"{RERUN}")
    if not isinstance(dataset.get("maximize", True), bool):
        raise DataError(f"{path}: dataset.maximize={dataset['maximize']!r} is not true/false; {RERUN}")


# --- the whole run directory, read back (hwnas-export) --------------------------------------

RUN_COLUMNS = ("arch", "accuracy", "latency_ms")


@dataclass
class RunDir:
    """A finished `hwnas-search` run: its summary, front, history and config.json."""

    path: Path
    summary: dict
    pareto: Any  # pandas DataFrame
    history: Any  # pandas DataFrame | None
    config: dict  # config.json, checked by check_rebuildable

    @property
    def space(self) -> str:
        return str(self.config["space"]["name"])

    @property
    def dataset(self) -> str:
        return str(self.config["dataset"]["name"])

    @property
    def device(self) -> str:
        dev = self.summary.get("device")
        return str(dev.get("name") if isinstance(dev, dict) else dev)

    @property
    def space_params(self) -> dict:
        """Constructor parameters of the space, exactly as searched."""
        from hwnas.spaces import SPACES

        return {k: typ(self.config["space"][k]) for k, typ in SPACES.get(self.space).params.items()}

    @property
    def maximize(self) -> bool:
        """Whether the run's `accuracy` column is higher-is-better (False for error metrics)."""
        return bool(self.config["dataset"].get("maximize", True))

    @property
    def latency_budget(self) -> float | None:
        value = (self.summary.get("constraints") or {}).get("latency_ms")
        return None if value is None else float(value)

    def predicted(self, arch: str) -> dict | None:
        """The run's figures for `arch`: its pareto.csv row, else its history.csv row."""
        for df in (self.pareto, self.history):
            if df is not None:
                rows = df[df["arch"] == arch]
                if len(rows):
                    return _row_dict(rows.iloc[0])
        return None


def _row_dict(row) -> dict:
    out: dict[str, Any] = {}
    for key in ("accuracy", "test_accuracy", "latency_ms", "energy_mj", "feasible", "query", "index"):
        if key in row.index and not _is_missing(row[key]):
            value = row[key]
            if key == "feasible":
                out[key] = _as_bool(value)
            elif key in ("query", "index"):
                out[key] = int(value)
            else:
                out[key] = float(value)
    return out


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def load_run(path: str | Path) -> RunDir:
    """Read and validate a finished run directory; a clear HwnasError says what is missing or corrupt."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise HwnasError(f"run directory {path} does not exist; pass run=<a hwnas-search output directory>")
    summary = _read_summary(path / SUMMARY)
    config = read_config(path)
    check_rebuildable(path, config)
    pareto = _read_table(path / PARETO, required=True)
    if pareto is None or pareto.empty:
        raise HwnasError(f"{path / PARETO}: the run's Pareto front is empty (no feasible "
                         f"architecture); relax the constraints and search again, or pass archs=[...]")
    history = _read_table(path / HISTORY, required=False)
    return RunDir(path, summary, pareto, history, config)


def _read_summary(path: Path) -> dict:
    if not path.is_file():
        raise HwnasError(f"{path.parent} is not a finished hwnas-search run directory: {path.name} is missing")
    summary = _read_json_object(path, "re-run the search or restore the file")
    missing = [k for k in ("space", "dataset", "device") if k not in summary]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}; not written by hwnas-search?")
    return summary


def _read_table(path: Path, required: bool):
    import pandas as pd

    if not path.is_file():
        if required:
            raise HwnasError(f"{path.parent} is not a hwnas-search run directory: {path.name} is missing")
        return None
    try:
        df = pd.read_csv(path, dtype={"arch": str})
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (no header); re-run the search or restore the file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc}); restore the file") from None
    missing = [c for c in RUN_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; header has "
                        f"{', '.join(map(str, df.columns))}")
    for col in ("accuracy", "latency_ms"):
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().nonzero()[0][0])
            raise DataError(f"{path}, line {row + 2}: column {col!r} has {df[col].iloc[row]!r}, not a number")
        df[col] = values
    return df
