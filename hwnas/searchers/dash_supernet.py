"""One DASH search: the space's backbone with a mixed convolution in every searchable layer,
weights and architecture logits trained jointly on the training split with a latency penalty,
then the argmax per layer.

The training follows the authors' code (sjunhongshen/DASH, src/main.py): single-level and
joint, i.e. one loss on one training batch, one backward, then a step of the weight optimiser
and a step of the architecture optimiser (no validation split, no second-order term). Their
architecture optimiser is SGD on a gradient normalised per layer; here it is Adam, which is
invariant to the gradient's scale in the same way and needs no per-task scale on short
schedules. The logits go through a plain softmax (the authors' Gumbel-softmax at temperature
1 adds noise that only a long schedule averages out), so the expected latency below is exact.

The latency penalty (hardware-aware DASH): loss = cross-entropy + lambda * E[latency], where
E[latency] = base + sum over layers of softmax(alpha_l) . delta_l, delta_l[c] being what
candidate c at layer l adds to the latency of the reference network (kernel 3, dilation 1
everywhere) according to the run's latency source. For a profiled table (an additive model,
calibrated linearly) delta_l[c] is the calibration slope times (table cost of conv_spec(l, c)
- table cost of conv_spec(l, reference)), so E[latency] is exactly the predicted latency of the
network the mixture is an average of. With `latency_unit=relative` the penalty is divided by
the latency range of the space (slowest network - fastest network, both under this model), so
lambda = 1 prices the whole range at one nat of cross-entropy and one sweep of lambdas suits
every device and task. Under a latency budget (`constraints`) every
search also pays budget_weight * max(0, E[latency] - budget) (same unit), so even lambda = 0
is pulled under the budget rather than proposing a network the front must drop.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.searchers.dash_mixed_conv import Candidate, mixed_conv
from hwnas.seeding import seeded, torch_generator

REFERENCE = (3, 1)  # the fixed backbone's convolution: kernel 3, dilation 1


def candidates_of(space) -> list[Candidate]:
    """The (kernel, dilation) pairs of one layer, in the space's order (kernel-major)."""
    return [(int(k), int(d)) for k in space.kernels for d in space.dilations]


def reference_choice(space) -> Candidate:
    """(3, 1) when the space offers it, else its smallest kernel at its smallest dilation."""
    cands = candidates_of(space)
    return REFERENCE if REFERENCE in cands else (min(space.kernels), min(space.dilations))


@dataclass
class LatencyModel:
    """What the penalty needs: the reference network's latency and each candidate's delta."""

    base_ms: float
    delta_ms: np.ndarray  # (layers, candidates)

    def expected(self, probs: Sequence[torch.Tensor]) -> torch.Tensor:
        d = torch.as_tensor(self.delta_ms, dtype=probs[0].dtype, device=probs[0].device)
        return self.base_ms + sum(torch.dot(p, d[i]) for i, p in enumerate(probs))

    @property
    def fastest_ms(self) -> float:
        """The fastest network of the space under this model: the cheapest candidate everywhere."""
        return float(self.base_ms + self.delta_ms.min(axis=1).sum())

    @property
    def slowest_ms(self) -> float:
        return float(self.base_ms + self.delta_ms.max(axis=1).sum())

    def of_choices(self, index: Sequence[int]) -> float:
        """Latency of a discrete network (candidate index per layer) under this additive model."""
        return float(self.base_ms + sum(self.delta_ms[i, c] for i, c in enumerate(index)))


def candidate_latency(space, latency_of: Callable[[list], np.ndarray], n_layers: int) -> LatencyModel:
    """Each candidate's latency delta at each layer, from the run's latency source
    (`latency_of(archs) -> ms`): the reference network and, per layer, the reference with that
    one layer swapped for each candidate. One batch of n_layers * candidates + 1 predictions."""
    cands = candidates_of(space)
    ref = reference_choice(space)
    base = [ref] * n_layers
    archs = [space.from_choices(base)]
    for layer in range(n_layers):
        for c in cands:
            choice = list(base)
            choice[layer] = c
            archs.append(space.from_choices(choice))
    lat = np.asarray(latency_of(archs), dtype=float)
    base_ms = float(lat[0])
    delta = (lat[1:] - base_ms).reshape(n_layers, len(cands))
    return LatencyModel(base_ms, delta)


@dataclass
class SupernetSettings:
    epochs: int
    warmup_epochs: int
    batch_size: int
    lr: float
    arch_lr: float
    weight_decay: float
    mixture: str  # fourier | naive
    latency_unit: str  # relative | ms
    budget_ms: float | None = None  # the run's latency budget (constraints), if any
    budget_weight: float = 0.0  # weight of the hinge max(0, E[latency] - budget)


@dataclass
class SupernetResult:
    choices: list[Candidate]
    index: list[int]  # candidate index per layer
    probs: list[list[float]]  # final softmax per layer
    expected_ms: float  # E[latency] of the final mixture
    chosen_ms: float  # latency of the argmax network under the additive model
    final_loss: float
    seconds: float
    steps: int
    trace: list[dict] = field(default_factory=list)  # per epoch: loss, E[latency]


def build_supernet(space, input_shape: Sequence[int], num_classes: int, mixture: str):
    """(the space's backbone with a mixed convolution in every searchable layer, those layers)
    for inputs of `input_shape` (C, H, W)."""
    from hwnas.spaces.dash_net import build_backbone

    space.check_input(int(input_shape[1]), "this data")  # a 1-D backbone on images: one clear error
    in_channels = int(input_shape[0])
    kind = space.kind()
    dims = 1 if kind == "1d" else 2
    cands = candidates_of(space)
    layers: list[nn.Module] = []

    def factory(layer_index: int, c_in: int, c_out: int, stride: int) -> nn.Module:
        if layer_index != len(layers):  # the contract: searchable convs made in order 0..n-1
            raise RuntimeError(f"backbone asked for searchable layer {layer_index}, expected {len(layers)}")
        m = mixed_conv(mixture, dims, c_in, c_out, cands, stride)
        layers.append(m)
        return m

    model = build_backbone(kind, in_channels, num_classes, factory, **backbone_size(space))
    return model, layers


def backbone_size(space) -> dict:
    """width/depth keywords of build_backbone from the space's parameters."""
    return {"width": space.width, "depth": space.depth}


def _optimizers(model: nn.Module, layers: list[nn.Module], s: SupernetSettings):
    arch = [m.alpha for m in layers]
    arch_ids = {id(p) for p in arch}
    weights = [p for p in model.parameters() if id(p) not in arch_ids]
    decay = [p for p in weights if p.ndim > 1]
    rest = [p for p in weights if p.ndim <= 1]
    w_opt = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                               {"params": rest, "weight_decay": 0.0}], lr=s.lr)
    a_opt = torch.optim.Adam(arch, lr=s.arch_lr, betas=(0.5, 0.999))  # DARTS's arch betas
    return w_opt, a_opt


def search_supernet(model_fn: Callable[[], tuple[nn.Module, list[nn.Module]]], x: torch.Tensor, y: torch.Tensor,
                    lat: LatencyModel, lam: float, s: SupernetSettings, seed: int, progress=None,
                    device: str = "cpu") -> SupernetResult:
    """Train the supernet `model_fn()` builds (under `seed`) jointly on (x, y) with penalty
    `lam`; return the argmax network. `progress(epoch, loss, expected_ms, images)` per batch."""
    t0 = time.perf_counter()
    # relative: lambda = 1 prices going from the fastest network of the space to the slowest at one
    # nat of cross-entropy, whatever the device (the offset of the fastest changes no gradient).
    scale = max(lat.slowest_ms - lat.fastest_ms, 1e-9) if s.latency_unit == "relative" else 1.0
    with seeded(seed):  # the same initial supernet and batch order for every lambda of a sweep
        model, layers = model_fn()
        model = model.to(device)
        gen = torch_generator(seed)
        n = len(x)
        steps_per_epoch = math.ceil(n / s.batch_size)
        total = steps_per_epoch * s.epochs
        w_opt, a_opt = _optimizers(model, layers, s)
        # Cosine decay of the weights' rate, per batch, as evaluator=train's schedule.
        sched = torch.optim.lr_scheduler.LambdaLR(w_opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / total)))
        loss_fn = nn.CrossEntropyLoss()
        trace, loss_value, steps = [], float("nan"), 0
        for epoch in range(s.epochs):
            model.train()
            update_arch = epoch >= s.warmup_epochs
            order = torch.randperm(n, generator=gen)
            running, seen = 0.0, 0
            for step in range(steps_per_epoch):
                idx = order[step * s.batch_size:(step + 1) * s.batch_size]
                if len(idx) < 2:  # BatchNorm cannot train on a batch of one
                    continue
                xb, yb = x[idx].to(device), y[idx].to(device)
                w_opt.zero_grad(set_to_none=True)
                a_opt.zero_grad(set_to_none=True)
                ce = loss_fn(model(xb), yb)
                expected = lat.expected([m.probs() for m in layers])
                loss = ce
                if update_arch:
                    loss = loss + lam * expected / scale
                    if s.budget_ms is not None and s.budget_weight > 0:
                        loss = loss + s.budget_weight * torch.relu(expected - s.budget_ms) / scale
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"DASH supernet loss went non-finite at epoch {epoch + 1}, step {step + 1}; "
                                             f"lower searcher.lr or searcher.arch_lr")
                loss.backward()
                w_opt.step()
                if update_arch:
                    a_opt.step()
                sched.step()
                steps += 1
                running += ce.item() * len(idx)
                seen += len(idx)
                if progress is not None:
                    progress(epoch + 1, running / seen, float(expected.detach()), len(idx))
            loss_value = running / max(seen, 1)
            with torch.no_grad():
                e_ms = float(lat.expected([m.probs() for m in layers]))
            trace.append({"epoch": epoch + 1, "loss": loss_value, "expected_ms": e_ms})
    with torch.no_grad():
        probs = [m.probs().cpu() for m in layers]
        index = [int(torch.argmax(m.alpha.detach())) for m in layers]
        expected_ms = float(lat.expected(probs))
    choices = [layers[i].candidates[c] for i, c in enumerate(index)]
    return SupernetResult(choices, index, [p.tolist() for p in probs], expected_ms, lat.of_choices(index),
                          loss_value, time.perf_counter() - t0, steps, trace)
