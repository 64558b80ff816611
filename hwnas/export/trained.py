"""Exporting what a search trained (`evaluator=train`): each network with the weights its
checkpoint holds, and its test accuracy measured again on the exported ONNX model.

The search measured validation accuracy (and test accuracy for its front) in torch; the
export runs the same test split through onnxruntime and records both, so a user sees that
the file they ship is the network whose accuracy the search reported.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import DataError, HwnasError
from hwnas.rundir import RunDir
from hwnas.training.checkpoints import FOLDER, CheckpointStore, read_checkpoint


def is_trained(run: RunDir) -> bool:
    return (run.config.get("evaluator") or {}).get("name") == "train"


class TrainedRun:
    """The trained networks of a run: geometry, checkpoints and the test split to check them on."""

    def __init__(self, run: RunDir):
        info = run.summary.get("training")
        if not isinstance(info, dict) or "input_shape" not in info or "num_classes" not in info:
            raise DataError(f"{run.path / 'summary.json'}: no 'training' record (input shape, classes) although the "
                            f"run trained its networks; re-run the search with this version of hwnas")
        self.run = run
        self.input_shape = tuple(int(d) for d in info["input_shape"])
        self.num_classes = int(info["num_classes"])
        self.data_digest = info.get("data_digest")
        self.store = CheckpointStore(run.path)
        self._test: tuple | None = None
        self._read: dict[str, tuple[Path, dict]] = {}  # checked before the export, used during it

    def checkpoint(self, arch_text: str) -> tuple[Path, dict]:
        """(path, checkpoint) of an architecture the search trained; HwnasError if it did not."""
        if arch_text not in self._read:
            path = self.store.path(arch_text)
            if not path.is_file():
                raise HwnasError(f"{arch_text} has no checkpoint in {self.run.path / FOLDER}: the search did not "
                                 f"train it (export architectures of this run's history, or search again)")
            self._read[arch_text] = (path, read_checkpoint(path, arch_text))
        return self._read[arch_text]

    def test_split(self) -> tuple[Any, np.ndarray]:
        """(inputs as the network saw them, labels) of the run's test split, read once."""
        if self._test is None:
            from hwnas.config import DatasetConfig
            from hwnas.datasets.base import load_dataset
            from hwnas.training.loop import prepare_inputs

            rec = dict(self.run.config.get("dataset") or {})
            known = {f.name for f in fields(DatasetConfig)}
            splits = load_dataset(DatasetConfig(**{k: v for k, v in rec.items() if k in known}),
                                  int(self.run.config.get("seed", 0)))
            if self.data_digest and splits.digest() != self.data_digest:
                raise DataError(f"the data of dataset {splits.name!r} differ from what the search trained on (digest "
                                f"{splits.digest()} now, {self.data_digest} then); restore the data to check the "
                                f"exported models' accuracy")
            size = (self.run.config.get("evaluator") or {}).get("image_size")
            self._test = (prepare_inputs(splits.x_test, size), np.asarray(splits.y_test))
        return self._test


def accuracy_check(model, onnx_path: Path, x, y: np.ndarray, threads: int, tol_points: float,
                   batch: int | None) -> dict:
    """Test accuracy of the torch network and of the ONNX file run by onnxruntime, and whether they agree
    (within `tol_points` percentage points: float reordering may flip a near-tie or two)."""
    import torch

    from hwnas.onnx_io import INPUT_NAME, ort_session
    from hwnas.training.loop import accuracy

    torch_acc = accuracy(model, x, torch.as_tensor(y))
    sess = ort_session(onnx_path, threads)
    step = batch or 256  # a fixed-batch export takes exactly its batch: pad the last one
    preds = []
    xs = x.numpy()
    for i in range(0, len(xs), step):
        chunk = xs[i:i + step]
        n = len(chunk)
        if batch is not None and n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), dtype=chunk.dtype)])
        preds.append(sess.run(None, {INPUT_NAME: chunk})[0][:n].argmax(1))
    pred = np.concatenate(preds)
    onnx_acc = 100.0 * float((pred == y).mean())
    return {"n_test": int(len(y)), "torch_test_accuracy": torch_acc, "onnx_test_accuracy": onnx_acc,
            "agree": abs(onnx_acc - torch_acc) <= tol_points, "tolerance_points": tol_points}
