"""`evaluator=train`: every queried architecture is trained for real on the configured data
(hwnas/datasets/) with the proxy schedule in the config; its accuracy is the validation
accuracy, and test accuracy is measured for the final front only.
"""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hwnas.config import DatasetConfig, EvaluatorConfig
from hwnas.errors import ConfigError
from hwnas.evaluators.base import EVALUATORS, Evaluator
from hwnas.spaces.base import Arch, SearchSpace


class TrainEvaluator(Evaluator):
    trains = True

    def __init__(self, space: SearchSpace, budget: int, splits, schedule, seed: int = 0, threads: int = 0,
                 device: str = "cpu"):
        super().__init__(space, budget)
        import torch

        from hwnas.training.loop import prepare_inputs

        self.splits, self.schedule, self.seed = splits, schedule, int(seed)
        self.device = device  # where networks train: cpu or cuda
        if threads:
            torch.set_num_threads(int(threads))
        x, y = splits.x_train, splits.y_train
        if schedule.train_subset is not None and schedule.train_subset < len(x):
            # The same subset for every architecture and seed: a fixed permutation of the split.
            keep = np.random.default_rng(0).permutation(len(x))[:schedule.train_subset]
            x, y = x[np.sort(keep)], y[np.sort(keep)]
        size = schedule.image_size
        self.x_train, self.y_train = prepare_inputs(x, size), torch.as_tensor(y, dtype=torch.long)
        self.x_val, self.y_val = prepare_inputs(splits.x_val, size), torch.as_tensor(splits.y_val, dtype=torch.long)
        self.input_shape = tuple(int(d) for d in self.x_train.shape[1:])
        self.num_classes = int(splits.num_classes)
        self.data_digest = splits.digest()
        self._test = None  # the test split as the networks see it, prepared on first use
        self.store = None  # CheckpointStore once attached to a run dir
        self._states: dict[str, dict] = {}  # weights kept in memory when there is no run dir
        self.show_progress = False
        self.log = lambda msg: print(msg, file=sys.stderr)

    def geometry_name(self, dataset_name: str) -> str:
        # The networks' real input (image_size included): a table profiled for another size would lie.
        from hwnas.datasets.base import geometry_key

        return geometry_key(dataset_name, self.input_shape, self.num_classes)

    # --- the run directory ----------------------------------------------------------------
    def attach_run_dir(self, run_dir: Path) -> None:
        from hwnas.training.checkpoints import CheckpointStore

        self.store = CheckpointStore(run_dir)

    def identity(self) -> dict:
        """What decides a trained network's weights; a checkpoint is reused only when it matches."""
        return {"schedule": asdict(self.schedule), "seed": self.seed, "data": self.data_digest,
                "dataset": self.splits.name, "input_shape": list(self.input_shape),
                "num_classes": self.num_classes, "space": self.space.name}

    # --- evaluation -------------------------------------------------------------------------
    def _evaluate(self, arch: Arch) -> float:
        from hwnas.training.loop import arch_seed, train

        text = str(arch)
        ident = self.identity()
        if self.store is not None:
            ckpt = self.store.load(text)
            if ckpt is not None and ckpt["meta"].get("identity") == ident:
                return float(ckpt["meta"]["val_accuracy"])  # trained before a kill: not again
        resume, on_epoch = None, None
        if self.store is not None:  # a training cut off by a kill goes on from its last epoch
            resume = self.store.load_partial(text, ident)
            on_epoch = lambda state: self.store.save_partial(text, state, ident)  # noqa: E731
        bar = self._bar(text)
        try:
            result = train(lambda: self.build(arch), self.x_train, self.y_train, self.x_val, self.y_val,
                           self.schedule, arch_seed(self.seed, text), bar, resume=resume, on_epoch=on_epoch,
                           device=self.device)
        finally:
            if bar is not None:
                bar.close()
        if result.diverged:
            self.log(f"warning: training of {text} diverged (non-finite loss); its accuracy is what the "
                     f"weights give ({result.val_accuracy:.2f}%). A lower evaluator.lr avoids this")
        meta = {"identity": ident, "val_accuracy": result.val_accuracy, "final_loss": result.final_loss,
                "train_seconds": round(result.seconds, 3), "images_per_s": round(result.images_per_s, 1),
                "diverged": result.diverged}
        if self.store is not None:
            self.store.save(text, result.state_dict, meta)
            self.store.drop_partial(text)
        else:
            self._states[text] = result.state_dict
        return result.val_accuracy

    def build(self, arch: Arch):
        # The input size too: a space may adapt its strides to it (mbv3 on 8x8 digits).
        return self.space.build(arch, self.num_classes, in_channels=self.input_shape[0],
                                input_size=tuple(self.input_shape[1:]))

    def trained_model(self, arch: Arch):
        """The trained network of an evaluated architecture, in eval mode."""
        text = str(arch)
        if self.store is not None:
            ckpt = self.store.load(text)
            state = None if ckpt is None else ckpt["state_dict"]
        else:
            state = self._states.get(text)
        if state is None:
            raise ConfigError(f"{text} was not trained in this search (no checkpoint)")
        model = self.build(arch)
        model.load_state_dict(state)
        return model.eval()

    def test_accuracy(self, arch: Arch) -> float:
        """Accuracy in percent on the test split (the final front only: the search never sees it)."""
        import torch

        from hwnas.training.loop import accuracy, prepare_inputs

        if self._test is None:  # once for the whole front
            self._test = (prepare_inputs(self.splits.x_test, self.schedule.image_size),
                          torch.as_tensor(self.splits.y_test, dtype=torch.long))
        return accuracy(self.trained_model(arch), *self._test)

    def _bar(self, text: str):
        if not self.show_progress:
            return None
        from tqdm import tqdm

        n, epochs = len(self.x_train), self.schedule.epochs
        bar = tqdm(total=n * epochs, unit="img", unit_scale=True, leave=False, dynamic_ncols=True,
                   desc=f"train q{self.used + 1}", file=sys.stderr)

        def update(epoch: int, step: int, steps: int, loss: float, images: int) -> None:
            bar.set_postfix({"epoch": f"{epoch}/{epochs}", "loss": f"{loss:.3f}"}, refresh=False)
            bar.update(images)

        update.close = bar.close  # type: ignore[attr-defined]
        return update


TRAIN_DEVICES = ("auto", "cpu", "cuda")


def resolve_train_device(name: str, trains_here: bool = True) -> str:
    """cpu or cuda for evaluator.train_device; cuda without a visible GPU where the networks
    train is a user error (a driver whose Ray workers train needs none)."""
    import torch

    if name not in TRAIN_DEVICES:
        raise ConfigError(f"evaluator.train_device={name!r}: must be one of {', '.join(TRAIN_DEVICES)}")
    has_gpu = torch.cuda.is_available()
    if name == "cuda" and not has_gpu and trains_here:
        raise ConfigError("evaluator.train_device=cuda but no CUDA GPU is visible here (on Ray: give each worker "
                          "one with evaluator.num_gpus); use evaluator.train_device=auto or cpu")
    return "cuda" if name == "cuda" or (name == "auto" and has_gpu) else "cpu"


@EVALUATORS.register("train")
def make_train(space: SearchSpace, cfg: EvaluatorConfig, dataset: DatasetConfig, budget: int, data_dir,
               seed: int = 0) -> TrainEvaluator:
    from hwnas.datasets.base import load_dataset
    from hwnas.training.loop import Schedule

    from hwnas.datasets.base import DATASETS

    if dataset.name not in DATASETS:
        raise ConfigError(f"evaluator=train trains on data it can read, and dataset {dataset.name!r} is not one; "
                          f"use dataset={'|'.join(DATASETS.names())} (or evaluator=tabular for a benchmark's table)")
    schedule = Schedule.from_config(cfg)  # a bad schedule fails before the data is read
    if cfg.threads < 0:
        raise ConfigError(f"evaluator.threads={cfg.threads}: must be >= 0 (0: torch's default)")
    device = resolve_train_device(cfg.train_device, trains_here=cfg.workers <= 1)  # before the data is read
    splits = load_dataset(dataset, seed)  # bad data fails here, before any training
    return TrainEvaluator(space, budget, splits, schedule, seed, cfg.threads, device)
