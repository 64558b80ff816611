"""Write one marked section of docs/searchers.md, leaving the others as they are.

Each benchmark owns the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`; a missing
section is appended. The file is replaced atomically (written beside it, then renamed).
"""
from __future__ import annotations

import os
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "docs" / "searchers.md"


def write_section(name: str, body: str, path: Path = README) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.is_file() else "# Searchers and surrogates: measurements\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
