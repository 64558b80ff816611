"""The run directory of `hwnas-search`: history.csv written as it goes, read back to resume."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

from hwnas.errors import DataError, HwnasError
from hwnas.io import write_text_atomic
from hwnas.problem import Evaluation
from hwnas.spaces.base import Arch, SearchSpace

BASE_COLUMNS = ["query", "arch", "index", "accuracy", "latency_ms", "feasible"]


def columns(with_energy: bool) -> list[str]:
    return BASE_COLUMNS + (["energy_mj"] if with_energy else [])


def row_of(query: int, ev: Evaluation, index: int | None) -> list[str]:
    # repr() of a float is exact and stable, so the same run gives the same bytes.
    row = [str(query), str(ev.arch), "" if index is None else str(index), repr(ev.accuracy),
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
    """(arch, accuracy) of each complete row of history.csv, in query order."""
    out: list[tuple[Arch, float]] = []
    for k, line in enumerate(read_history_lines(path)):
        try:
            cells = next(csv.reader([line]))
            query, arch_s, acc = int(cells[0]), cells[1], float(cells[3])
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


def write_rows_csv(path: Path, with_energy: bool, rows: Sequence[tuple[int, Evaluation, int | None]]) -> None:
    text = _line(columns(with_energy)) + "".join(_line(row_of(q, ev, i)) for q, ev, i in rows)
    write_text_atomic(path, text)

