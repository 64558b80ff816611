"""evaluator=train on real data (scikit-learn's 8x8 digits): determinism, resume without
retraining, bad input, test accuracy of the front, and trained export."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, export_trained_run, kill_search_when, read_rows, run_app

# A small proxy so each training takes about a second on CI's cores: NB-201 with 4 channels, one
# cell per stage, two epochs of digits.
TINY = ["space=nb201", "space.channels=4", "space.cells_per_stage=1", "dataset=digits", "evaluator=train",
        "evaluator.epochs=2", "evaluator.batch_size=64", "device=raspi4", "constraints.latency_ms=inf",
        "searcher=random", "output.progress=false", "output.plot=false"]


@pytest.fixture(scope="module")
def digits_eval(data_dir):
    from hwnas.config import DatasetConfig, EvaluatorConfig
    from hwnas.evaluators import EVALUATORS
    from hwnas.spaces import NB201Space

    space = NB201Space(data_dir=data_dir, channels=4, cells_per_stage=1)

    def make(seed=0, budget=10, **schedule):
        cfg = EvaluatorConfig(name="train", **{"epochs": 2, "batch_size": 64, **schedule})
        return EVALUATORS.get("train")(space, cfg, DatasetConfig(name="digits", source="files"), budget, data_dir,
                                       seed=seed)

    return space, make


def test_same_seed_same_accuracy_and_weights_whatever_the_order(digits_eval):
    space, make = digits_eval
    a, b = space.from_index(100), space.from_index(9000)
    first, second = make(), make()
    acc_ab = [first.evaluate(a)[0], first.evaluate(b)[0]]
    acc_ba = [second.evaluate(b)[0], second.evaluate(a)[0]][::-1]
    assert acc_ab == acc_ba  # an architecture's training depends on the seed and itself alone
    wa1, wa2 = first.trained_model(a).state_dict(), second.trained_model(a).state_dict()
    assert all(torch.equal(wa1[k], wa2[k]) for k in wa1)
    other_seed = make(seed=1).evaluate(a)[0]
    w_other = make(seed=1)
    w_other.evaluate(a)
    assert any(not torch.equal(wa1[k], w_other.trained_model(a).state_dict()[k]) for k in wa1)
    assert 10.0 <= other_seed <= 100.0
    # It really learns: a conv cell beats chance (10%) by far on digits even with this proxy.
    conv = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert make().evaluate(conv)[0] > 50.0


def test_bad_schedule_is_refused_before_the_data_is_read(digits_eval):
    from hwnas.errors import ConfigError

    _, make = digits_eval
    for kw, needle in [({"epochs": 0}, "evaluator.epochs=0"), ({"optimizer": "lbfgs"}, "evaluator.optimizer"),
                       ({"lr": -1.0}, "evaluator.lr"), ({"train_subset": 0}, "evaluator.train_subset")]:
        with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
            make(**kw)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """(run dir, the search's stdout) of one small trained search, shared by the tests that read it."""
    out = tmp_path_factory.mktemp("trained") / "run"
    r = run_app(f"hydra.run.dir={out}", *TINY, "budget.queries=4", "seed=1")
    assert r.returncode == 0, r.stderr
    return out, r.stdout


def test_search_writes_checkpoints_and_front_test_accuracy(trained_run):
    out, stdout = trained_run
    assert "test_acc" in stdout
    hist, front = read_rows(out / "history.csv"), read_rows(out / "pareto.csv")
    assert len(hist) == 4 and len(list((out / "checkpoints").glob("*.pt"))) == 4
    assert front and all(0.0 <= float(row["test_accuracy"]) <= 100.0 for row in front)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluator"] == "train"
    assert summary["training"]["input_shape"] == [1, 8, 8] and summary["training"]["num_classes"] == 10
    assert set(summary["training"]["front_test_accuracy"]) == {row["arch"] for row in front}


def test_killed_search_resumes_without_retraining(tmp_path):
    args = [*TINY, "budget.queries=5", "seed=3"]
    ref = tmp_path / "ref"
    assert run_app(f"hydra.run.dir={ref}", *args).returncode == 0

    run = tmp_path / "run"
    ckpts = run / "checkpoints"
    kill_search_when([f"hydra.run.dir={run}", *args], lambda: ckpts.is_dir() and len(list(ckpts.glob("*.pt"))) >= 2)
    before = {p.name: p.stat().st_mtime_ns for p in ckpts.glob("*.pt")}
    assert 2 <= len(before) < 5 and not (run / "summary.json").exists()

    r = run_app(f"hydra.run.dir={run}", *args, "resume=true")
    assert r.returncode == 0, r.stderr
    after = {p.name: p.stat().st_mtime_ns for p in ckpts.glob("*.pt")}
    assert all(after[name] == t for name, t in before.items())  # nothing trained before the kill was retrained
    assert len(after) == 5
    assert (run / "history.csv").read_bytes() == (ref / "history.csv").read_bytes()
    assert (run / "pareto.csv").read_bytes() == (ref / "pareto.csv").read_bytes()


@pytest.mark.parametrize("arg, expected", [
    ("evaluator.epochs=0", "evaluator.epochs=0: must be an integer >= 1"),
    ("dataset=npz", "npz"),
    ("evaluator.image_size=2", "evaluator.image_size=2"),
    ("evaluator.train_device=tpu", "evaluator.train_device='tpu': must be one of auto, cpu, cuda"),
    ("dataset=cifar10", "evaluator=train trains on data it can read, and dataset 'cifar10' is not one"),
])
def test_bad_input_is_one_line_before_any_training(tmp_path, arg, expected):
    out = tmp_path / "run"
    r = run_app(f"hydra.run.dir={out}", *TINY, "budget.queries=2", arg)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (out / "checkpoints").exists()


def test_trained_export_ships_the_searched_weights_and_accuracy(trained_run, tmp_path):
    import onnxruntime as ort

    from hwnas.config import DatasetConfig
    from hwnas.datasets.base import load_dataset

    run = trained_run[0]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = tmp_path / "export"
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.export", f"run={run}", f"out={out}", "progress=false",
                        "plot=false"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"].startswith("trained by the search")
    assert manifest["network"]["input_shape"] == [1, 8, 8]
    front = {row["arch"]: float(row["test_accuracy"]) for row in read_rows(run / "pareto.csv")}
    x_test = y_test = None
    for m in manifest["models"]:
        assert m["status"] == "ok" and m["accuracy"]["agree"]
        assert m["checkpoint"]["test_accuracy"] == pytest.approx(front[m["arch"]])
        assert m["accuracy"]["onnx_test_accuracy"] == pytest.approx(front[m["arch"]], abs=0.1)
        # The file alone, run by onnxruntime on the test split, gives the recorded accuracy.
        if x_test is None:
            splits = load_dataset(DatasetConfig(name="digits", source="files"))
            x_test, y_test = splits.x_test.astype(np.float32), splits.y_test
        sess = ort.InferenceSession(str(out / m["file"]), providers=["CPUExecutionProvider"])
        pred = sess.run(None, {sess.get_inputs()[0].name: x_test})[0].argmax(1)
        assert 100.0 * float((pred == y_test).mean()) == pytest.approx(m["accuracy"]["onnx_test_accuracy"])
    # An architecture the search never trained has no weights: refused before anything is written.
    other = tmp_path / "export2"
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.export", f"run={run}", f"out={other}",
                        "archs=[0]", "progress=false"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "has no checkpoint" in r.stderr and not other.exists()


def test_mbv3_on_digits_with_defaults_searches_and_exports_its_trained_front(tmp_path):
    """`hwnas-search space=mbv3 evaluator=train dataset=digits` (device: this machine by default),
    then `hwnas-export`. The latency table is synthetic (not timed) to keep CI fast; the training,
    the ONNX files and their accuracy are real."""
    from profile_fixture import synthetic_table

    from hwnas.config import this_machine_table
    from hwnas.latency.table import table_path
    from hwnas.spaces.mbv3 import MBV3Space

    path = table_path(this_machine_table("mbv3", "digits", 0.25))
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_table(MBV3Space(width_mult=0.25), path, "digits", calibration=(1.0, 0.0))
    run = tmp_path / "run"
    r = run_app("space=mbv3", "space.width_mult=0.25", "evaluator=train", "dataset=digits", "budget.queries=3",
                "evaluator.epochs=2", "output.progress=false", "output.plot=false", f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["space"] == "mbv3" and summary["device"] == path.stem and summary["queries"] == 3
    models, front = export_trained_run(run, [1, 8, 8])
    for m in models:
        assert m["accuracy"]["onnx_test_accuracy"] == pytest.approx(front[m["arch"]], abs=0.1)
        assert m["device_latency_ms"] == pytest.approx(m["predicted"]["latency_ms"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible: train_device=cuda is valid here")
def test_cuda_training_without_a_gpu_is_one_line(tmp_path):
    r = run_app(f"hydra.run.dir={tmp_path / 'run'}", *TINY, "budget.queries=2", "evaluator.train_device=cuda")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "evaluator.train_device=cuda but no CUDA GPU is visible" in r.stderr and "Traceback" not in r.stderr


def test_training_cut_off_after_an_epoch_goes_on_to_the_same_weights(digits_eval, tmp_path, monkeypatch):
    """What a kill in the middle of a training leaves (checkpoints/partial/) is enough to end it
    with the weights of an unbroken run: the driver or worker killed mid-training loses one epoch
    at most."""
    space, make = digits_eval
    arch = space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|")
    whole = make(epochs=3)
    whole.attach_run_dir(tmp_path / "whole")
    acc = whole.evaluate(arch)[0]

    class Killed(Exception):
        pass

    cut = make(epochs=3)
    cut.attach_run_dir(tmp_path / "cut")
    save = cut.store.save_partial

    def save_then_die(text, state, identity):  # the process dies right after epoch 2 was saved
        save(text, state, identity)
        if state["epoch"] == 2:
            raise Killed

    cut.store.save_partial = save_then_die
    with pytest.raises(Killed):
        cut.evaluate(arch)
    partial = tmp_path / "cut" / "checkpoints" / "partial"
    assert len(list(partial.glob("*.pt"))) == 1
    import hwnas.training.loop as loop

    started_at = []
    real_train = loop.train

    def spy(*args, resume=None, **kw):
        started_at.append(None if resume is None else resume["epoch"])
        return real_train(*args, resume=resume, **kw)

    monkeypatch.setattr(loop, "train", spy)
    again = make(epochs=3)
    again.attach_run_dir(tmp_path / "cut")
    assert again.evaluate(arch)[0] == acc
    assert started_at == [2]  # only the last epoch was trained again
    w1, w2 = whole.trained_model(arch).state_dict(), again.trained_model(arch).state_dict()
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert not list(partial.glob("*.pt"))  # dropped once the training ended
    # A partial training of another schedule is not resumed (it would give other weights).
    other = make(epochs=4)
    other.attach_run_dir(tmp_path / "cut2")
    assert other.store.load_partial(str(arch), other.identity()) is None
