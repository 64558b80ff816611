from hwnas.problem import Evaluation
from hwnas.rundir import HistoryWriter, read_history
from hwnas.spaces.nb201 import NB201Arch


def test_torn_last_line_is_dropped_and_rewritten(tmp_path, nb201):
    path = tmp_path / "history.csv"
    w = HistoryWriter(path, with_energy=False)
    archs = [NB201Arch((i % 5, 1, 2, 3, 4, 0)) for i in range(3)]
    for q, a in enumerate(archs, 1):
        w.append(q, Evaluation(a, 90.0 + q, 10.0 - q, 1.5 * q, None, True), None)
    w.close()
    text = path.read_text()
    path.write_text(text + "4,|nor_conv")  # a kill in the middle of a write
    assert [a for a, _ in read_history(path, nb201)] == archs
    w = HistoryWriter(path, with_energy=False, keep_rows=2)
    w.close()
    assert path.read_text() == "".join(text.splitlines(keepends=True)[:3])
