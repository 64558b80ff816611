"""The NAS-Bench-201 network in torch: stem, 3 stages of N cells, residual reductions.

Follows the benchmark's definition (Dong & Yang, ICLR 2020): ReLU-Conv-BN cell convolutions,
3x3 average pooling without padded zeros, a basic residual block between stages.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hwnas.spaces.nb201_cell import EDGES, OPS  # noqa: F401  (re-exported)


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The `none` op: contributes nothing (kept so the graph matches the benchmark)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class AvgPool3x3(nn.AvgPool2d):
    def __init__(self) -> None:
        super().__init__(3, stride=1, padding=1, count_include_pad=False)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}; valid: {', '.join(OPS)}")


class Cell(nn.Module):
    def __init__(self, ops: Sequence[str], channels: int):
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for to in range(1, 4):
            acc = None
            for _ in range(to):
                (_, frm) = EDGES[k]
                out = self.edges[k](nodes[frm])
                acc = out if acc is None else acc + out
                k += 1
            nodes.append(acc)
        return nodes[3]


class ResidualReduction(nn.Module):
    """Basic residual block with stride 2 between stages (the benchmark's ResNetBasicblock)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    def __init__(self, ops: Sequence[str], num_classes: int, channels: int = 16,
                 cells_per_stage: int = 5, in_channels: int = 3):
        super().__init__()
        self.stem = Stem(in_channels, channels)
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, c * 2))
                c *= 2
            layers.extend(Cell(ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


class Stem(nn.Sequential):
    """The network's stem: conv 3x3 + BN (the same layers NB201Network builds)."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))


class Head(nn.Module):
    """The network's tail: BN + ReLU, global average pool, classifier."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.lastact(x)), 1))


class NodeSum(nn.Module):
    """A cell node's sum of two incoming edges (one Add node; one input suffices to time it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x


def op_module(op: str, c_in: int, c_out: int, num_classes: int | None = None) -> nn.Module:
    """One layer of the network as a stand-alone module, for timing it alone (latency tables)."""
    if op in OPS:
        return make_op(op, c_in)
    if op == "stem":
        return Stem(c_in, c_out)
    if op == "reduction":
        return ResidualReduction(c_in, c_out)
    if op == "add":
        return NodeSum()
    if op == "head":
        return Head(c_in, c_out if num_classes is None else num_classes)
    raise ValueError(f"unknown NAS-Bench-201 layer {op!r}; valid: {', '.join((*OPS, 'stem', 'reduction', 'add', 'head'))}")
