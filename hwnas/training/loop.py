"""One architecture trained for real, deterministically: the proxy schedule of `evaluator=train`.

Everything random (initial weights, batch order, dropout) comes from one seed, derived from
the search seed and the architecture's string, so an architecture's accuracy does not
depend on what was trained before it, and a resumed search retrains nothing differently.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.seeding import seeded, torch_generator

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Schedule:
    """How each queried architecture is trained (EvaluatorConfig's train fields, checked)."""

    epochs: int = 3
    train_subset: int | None = None
    image_size: int | None = None
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 5e-4

    @classmethod
    def from_config(cls, cfg) -> "Schedule":
        s = cls(epochs=cfg.epochs, train_subset=cfg.train_subset, image_size=cfg.image_size,
                batch_size=cfg.batch_size, optimizer=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay)
        s.check()
        return s

    def check(self) -> None:
        def bad(key: str, value, want: str):
            raise ConfigError(f"evaluator.{key}={value!r}: must be {want}")

        if self.epochs < 1:
            bad("epochs", self.epochs, "an integer >= 1")
        if self.train_subset is not None and self.train_subset < 1:
            bad("train_subset", self.train_subset, "an integer >= 1 or null (all)")
        if self.image_size is not None and self.image_size < 4:
            bad("image_size", self.image_size, "an integer >= 4 or null (the data's own size)")
        if self.batch_size < 1:
            bad("batch_size", self.batch_size, "an integer >= 1")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", self.optimizer, f"one of {', '.join(OPTIMIZERS)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad("lr", self.lr, "a finite number > 0")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            bad("weight_decay", self.weight_decay, "a finite number >= 0")


@dataclass(frozen=True)
class TrainResult:
    state_dict: dict
    val_accuracy: float  # percent
    final_loss: float
    seconds: float
    images_per_s: float
    diverged: bool = False  # the loss went non-finite: training stopped, the accuracy is what is left


def arch_seed(seed: int, arch_text: str) -> int:
    """The seed of one architecture's training: a function of the search seed and the arch alone."""
    digest = hashlib.sha256(f"{int(seed)}|{arch_text}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _optimizer(model: nn.Module, s: Schedule) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm and biases: the usual recipe for small conv nets.
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": s.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if s.optimizer == "adam":
        return torch.optim.AdamW(groups, lr=s.lr)
    return torch.optim.SGD(groups, lr=s.lr, momentum=0.9, nesterov=True)


@torch.inference_mode()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent of `model` (put in eval mode) on (x, y), on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        pred = model(x[i:i + batch_size].to(device)).argmax(1).cpu()
        correct += int((pred == y[i:i + batch_size]).sum())
    return 100.0 * correct / max(len(x), 1)


def train(model_fn, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
          schedule: Schedule, seed: int, progress=None, resume: dict | None = None,
          on_epoch=None, device: str = "cpu") -> TrainResult:
    """Build the model with `model_fn()` under `seed`, train it on (x_train, y_train) with the
    schedule and return its state and validation accuracy.

    `progress(epoch, step, steps_per_epoch, loss, images)` is called after each batch (a bar).
    `on_epoch(state)` gets, after each epoch but the last, everything the training needs to go
    on; `resume=state` goes on from there and ends with the very weights of an unbroken run.
    `device`: where the model trains ("cuda" on a GPU worker); the data stays on the CPU and
    goes over batch by batch; the returned weights are on the CPU."""
    t0 = time.perf_counter()
    with seeded(seed):  # initial weights and dropout: this seed alone, the caller's RNG untouched
        model = model_fn().to(device)  # built on the CPU under the seed: the same initial weights anywhere
        gen = torch_generator(seed)
        n = len(x_train)
        steps_per_epoch = math.ceil(n / schedule.batch_size)
        total = steps_per_epoch * schedule.epochs
        opt = _optimizer(model, schedule)
        # Cosine decay to zero, stepped per batch: short proxies still end on a small rate.
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / total)))
        loss_fn = nn.CrossEntropyLoss()
        images, loss_value, diverged, start = 0, float("nan"), False, 0
        if resume is not None:
            model.load_state_dict(resume["model"])
            opt.load_state_dict(resume["optimizer"])
            sched.load_state_dict(resume["scheduler"])
            gen.set_state(resume["generator"])
            torch.set_rng_state(resume["rng"])  # dropout draws go on where they stopped
            start, images, loss_value = int(resume["epoch"]), int(resume["images"]), float(resume["loss"])
            t0 -= float(resume["seconds"])
        for epoch in range(start, schedule.epochs):
            if diverged:
                break
            model.train()
            order = torch.randperm(n, generator=gen)
            running, seen = 0.0, 0
            for step in range(steps_per_epoch):
                idx = order[step * schedule.batch_size:(step + 1) * schedule.batch_size]
                if len(idx) < 2 and step > 0:  # BatchNorm cannot train on a batch of one
                    continue
                xb, yb = x_train[idx].to(device), y_train[idx].to(device)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                if not torch.isfinite(loss):
                    # A real outcome of this schedule for this network, not a crash of the search.
                    diverged = True
                    break
                loss.backward()
                opt.step()
                sched.step()
                running += loss.item() * len(idx)
                seen += len(idx)
                images += len(idx)
                if progress is not None:
                    progress(epoch + 1, step + 1, steps_per_epoch, running / max(seen, 1), len(idx))
            loss_value = running / max(seen, 1)
            if on_epoch is not None and not diverged and epoch + 1 < schedule.epochs:
                on_epoch({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict(), "generator": gen.get_state(),
                          "rng": torch.get_rng_state(), "images": images, "loss": loss_value,
                          "seconds": time.perf_counter() - t0})
        val = accuracy(model, x_val, y_val)
    seconds = time.perf_counter() - t0
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return TrainResult(state, val, loss_value, seconds, images / max(seconds, 1e-9), diverged)


def prepare_inputs(x: np.ndarray, image_size: int | None) -> torch.Tensor:
    """float32 NCHW tensor, resized (bilinear) to image_size x image_size when one is given."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if image_size is not None and tuple(t.shape[2:]) != (image_size, image_size):
        t = torch.nn.functional.interpolate(t, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return t.contiguous()
