"""A full disk or a read-only folder: one line and exit 2, what was written stays intact."""
from __future__ import annotations

import dataclasses
import errno
import os

import pytest

from conftest import make_search_cfg, read_rows
from hwnas.errors import exit_on_user_error
from hwnas.rundir import HistoryWriter
from hwnas.search import search

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")


def test_full_disk_during_a_search_is_one_line_and_resumable(tmp_path, monkeypatch, capsys):
    real_append = HistoryWriter.append
    calls = []

    def append_then_fill_the_disk(self, query, ev, index):
        calls.append(query)
        if len(calls) == 6:  # from now on every write really fails with ENOSPC
            self._fh.close()
            self._fh = open("/dev/full", "a", encoding="utf-8")
        real_append(self, query, ev, index)

    monkeypatch.setattr(HistoryWriter, "append", append_then_fill_the_disk)
    cfg = make_search_cfg(searcher="random", queries=12)
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        exit_on_user_error(search)(cfg, run, progress=False, log=lambda *a: None)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "disk is full" in err[0] and "resume=true" in err[0], err
    assert len(read_rows(run / "history.csv")) == 5  # the rows written before the disk filled

    monkeypatch.setattr(HistoryWriter, "append", real_append)
    summary = search(dataclasses.replace(cfg, resume=True), run, progress=False, log=lambda *a: None)
    assert summary["queries"] == 12 and len(read_rows(run / "history.csv")) == 12


def test_other_os_errors_are_not_hidden():
    @exit_on_user_error
    def broken():
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError):
        broken()
