"""Write a benchmark's measured table into its page under docs/, between markers, atomically.

Each benchmark owns the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` of one
page; a re-run replaces that text, with a line saying on which machine and when it was
measured, and leaves the rest of the page (the prose around it) as it is. A section not yet
in the page is appended. The page is replaced atomically (hwnas.io), so a killed benchmark
never leaves half a page.
"""
from __future__ import annotations

import os
import platform
from datetime import date
from pathlib import Path

from hwnas.io import write_text_atomic
from hwnas.machine import cpu_hardware

DOCS = Path(__file__).resolve().parents[1] / "docs"


def machine_line(note: str = "", today: date | None = None) -> str:
    """'Measured on <CPU model> (<vendor family/model/stepping>, <widest vector ISA>, <n> cores,
    <OS> <arch>), <date>[; note].' The id and ISA tell apart generations sold under one name."""
    when = (today or date.today()).isoformat()
    hw = cpu_hardware()  # one read of /proc/cpuinfo
    ident = ", ".join(x for x in (hw["cpu_id"], hw["cpu_isa"]) if x)
    line = (f"Measured on {hw['processor']} ({ident + ', ' if ident else ''}{os.cpu_count()} cores, "
            f"{platform.system()} {platform.machine()}), {when}")
    return line + (f"; {note}" if note else "") + "."


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with section `name` holding `body` (appended when the page has no such section)."""
    start, end = markers(name)
    if start in body or end in body:
        raise ValueError(f"the body of section {name!r} contains its own markers")
    block = f"{start}\n{body.strip()}\n{end}"
    n_start, n_end = text.count(start), text.count(end)
    if n_start == n_end == 0:
        return text.rstrip() + "\n\n" + block + "\n"
    if n_start != 1 or n_end != 1 or text.index(start) > text.index(end):
        # Never guess which text is the benchmark's: a hand edit broke the markers.
        raise ValueError(f"section {name!r}: expected one {start} before one {end}, found "
                         f"{n_start} and {n_end}; fix the markers by hand")
    head, rest = text.split(start, 1)
    return head + block + rest.split(end, 1)[1]


def write_section(page: str | os.PathLike, name: str, body: str, note: str = "",
                  machine: bool = True) -> Path:
    """Put `body` (+ the machine line unless machine=False) into section `name` of `page`
    (a file name under docs/, or a path). Returns the page's path."""
    path = Path(page)
    if not path.is_absolute() and path.parent == Path("."):
        path = DOCS / path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such docs page (a benchmark writes into an existing page)")
    if machine:
        body = body.rstrip() + "\n\n" + machine_line(note)
    write_text_atomic(path, replace_section(path.read_text(encoding="utf-8"), name, body))
    return path


def table_source(path: str | os.PathLike, table, n: int) -> str:
    """'table <file> (<n> architectures timed end to end by hwnas-profile on <CPU>, <t> thread,
    batch <b>)': which timings a study of a stored table read, and where they were taken."""
    fp = table.fingerprint or {}
    return (f"table {Path(path).name} ({n} architectures timed end to end by hwnas-profile on "
            f"{fp.get('processor', '?')}, {fp.get('intra_op_threads', '?')} thread, batch {fp.get('batch', '?')})")


def report_table_study(page: str | os.PathLike, prefix: str, table, text: str, note: str, docs: bool = True) -> None:
    """Print a study of a table's stored timings (nothing timed), and with `docs` write it into
    section `<prefix>:<CPU of the table>` of `page`: the line under it names the table and its CPU
    (`note`, from table_source), not the machine that ran the study."""
    from hwnas.machine import cpu_slug

    print(text + "\n\n" + note)
    if docs:
        name = f"{prefix}:{cpu_slug((table.fingerprint or {}).get('processor'))}"
        body = f"{text}\n\nFrom the {note}; computed {date.today().isoformat()}."
        print(f"wrote {write_section(page, name, body, machine=False)}")


def markdown_table(df) -> str:
    """A DataFrame as a markdown table, its cells as pandas prints them (no tabulate needed)."""
    head = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)
