"""The fixed backbones of `space=dash` in torch (DASH, Shen et al. 2022: a standard CNN whose every
searchable convolution picks a kernel size and a dilation).

Contract (hwnas/searchers/dash builds its Fourier-domain mixed convolution on it; add, never rename):

- ``ConvFactory = Callable[[int, int, int, int], nn.Module]``, called as
  ``factory(layer_index, c_in, c_out, stride)``. The module it returns maps (N, c_in, L) ->
  (N, c_out, ceil(L / stride)) for kind "1d", or (N, c_in, H, W) -> (N, c_out, ceil(H / stride),
  ceil(W / stride)) for kind "2d" ('same'-style padding: dilation * (kernel - 1) // 2 each side,
  odd kernels).
- ``build_backbone(kind, in_channels, num_classes, factory, *, width, depth) -> nn.Module``: kind
  "1d" or "2d"; the network's input is always (N, C, H, W) (a "1d" backbone takes H == 1 and
  squeezes it inside), its output (N, num_classes). Every searchable convolution is created through
  `factory`, in a fixed order, layer_index 0..n-1 (``len(conv_slots(...))``); the rest (the 1x1
  shortcut projections, batch norms, the head) is fixed. ``Backbone.searchable()`` returns the
  factory's modules in layer order.
- ``fixed_conv(kind, c_in, c_out, kernel, dilation, stride) -> nn.Module``: the plain Conv1d /
  Conv2d (bias=False, padding dilation * (kernel - 1) // 2) of one discrete choice; `space.build`
  is ``build_backbone`` with a factory returning fixed_conv per the architecture.
- ``conv_slots(kind, in_channels, width, depth) -> list[ConvSlot]``: (c_in, c_out, stride) of
  every searchable convolution in layer order, the one plan the network and the space's op list
  (hwnas/spaces/dash.py) are both made from.

Backbones (docs/spaces.md, "dash"):

- "2d": DASH's Wide-ResNet (pre-activation; Zagoruyko & Komodakis 2016): a searchable stem conv
  (in_channels -> 16), 3 stages of `depth` blocks with `width`, 2 x `width`, 4 x `width` channels
  and strides 1, 2, 2; a block is BN-ReLU-conv1-BN-ReLU-conv2 (conv2 carries the stride) plus the
  input, through a 1x1 conv when shape or channels change; then BN-ReLU, global average pool,
  linear. depth=2, width=16 is DASH's search network WRN-16-1; width=64 its retrained WRN-16-4.
- "1d": DASH's 1-D ResNet (the ResNet baseline of Wang et al. 2017 as DASH's wrn1d): 3 stages of
  `depth` blocks with `width`, 2 x `width`, 2 x `width` channels, no striding (the sequence keeps
  its length); a block is three conv-BN-ReLU plus the input (a 1x1 conv + BN when the channels
  change; DASH's code drops the identity shortcut, this one keeps it); then global average pool
  over the length, linear. depth=1 is DASH's network.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

KINDS = ("1d", "2d")
STEM_WIDTH = 16  # Wide-ResNet's first conv (nStages[0])
STAGE_MULT = {"2d": (1, 2, 4), "1d": (1, 2, 2)}
STAGE_STRIDE = {"2d": (1, 2, 2), "1d": (1, 1, 1)}
CONVS_PER_BLOCK = {"2d": 2, "1d": 3}

ConvFactory = Callable[[int, int, int, int], nn.Module]


@dataclass(frozen=True)
class ConvSlot:
    """One searchable convolution: channels in and out, its stride, and the block it belongs to
    (-1: the 2-D stem)."""

    c_in: int
    c_out: int
    stride: int
    block: int


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"backbone kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def out_size(size: int, stride: int) -> int:
    """A 'same'-padded conv's output length: ceil(size / stride)."""
    return (size - 1) // stride + 1


def conv_slots(kind: str, in_channels: int, width: int, depth: int) -> list[ConvSlot]:
    """Every searchable convolution of the backbone, in layer order (module docstring)."""
    check_kind(kind)
    if width < 1 or depth < 1 or in_channels < 1:
        raise ValueError(f"in_channels, width and depth must be >= 1, got {in_channels}, {width}, {depth}")
    slots: list[ConvSlot] = []
    c = in_channels
    if kind == "2d":
        slots.append(ConvSlot(c, STEM_WIDTH, 1, -1))
        c = STEM_WIDTH
    block = 0
    for mult, stride in zip(STAGE_MULT[kind], STAGE_STRIDE[kind]):
        planes = width * mult
        for b in range(depth):
            s = stride if b == 0 else 1
            if kind == "2d":
                slots += [ConvSlot(c, planes, 1, block), ConvSlot(planes, planes, s, block)]
            else:
                slots += [ConvSlot(c, planes, 1, block), ConvSlot(planes, planes, 1, block),
                          ConvSlot(planes, planes, 1, block)]
            c = planes
            block += 1
    return slots


def fixed_conv(kind: str, c_in: int, c_out: int, kernel: int, dilation: int, stride: int) -> nn.Module:
    """The plain convolution of one (kernel, dilation) choice, 'same'-padded, without bias (a batch
    norm follows, or the residual sum feeds the next block's)."""
    conv = nn.Conv1d if check_kind(kind) == "1d" else nn.Conv2d
    return conv(c_in, c_out, kernel, stride=stride, padding=dilation * (kernel - 1) // 2, dilation=dilation,
                bias=False)


def make_proj(kind: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The fixed 1x1 shortcut projection of a block whose shape or channels change."""
    if check_kind(kind) == "2d":
        return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=True)  # Wide-ResNet's: no norm
    return nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))


class Head(nn.Module):
    """(2d: BN-ReLU), global average pool, linear classifier."""

    def __init__(self, kind: str, channels: int, num_classes: int):
        super().__init__()
        self.pre = (nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU()) if check_kind(kind) == "2d"
                    else nn.Identity())
        self.pool = nn.AdaptiveAvgPool2d(1) if kind == "2d" else nn.AdaptiveAvgPool1d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.pre(x)), 1))


class WideBlock(nn.Module):
    """Pre-activation Wide-ResNet block: BN-ReLU-conv1-BN-ReLU-conv2 + shortcut."""

    def __init__(self, conv1: nn.Module, conv2: nn.Module, c_in: int, planes: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), conv1
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), conv2
        self.relu = nn.ReLU()
        self.shortcut = make_proj("2d", c_in, planes, stride) if stride != 1 or c_in != planes else nn.Identity()

    def convs(self) -> list[nn.Module]:
        return [self.conv1, self.conv2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        return out + self.shortcut(x)


class ResBlock1d(nn.Module):
    """Three conv-BN-ReLU + shortcut (1x1 conv + BN when the channels change)."""

    def __init__(self, convs: list[nn.Module], c_in: int, planes: int):
        super().__init__()
        self.body = nn.ModuleList(convs)
        self.bns = nn.ModuleList(nn.BatchNorm1d(planes) for _ in convs)
        self.relu = nn.ReLU()
        self.shortcut = make_proj("1d", c_in, planes, 1) if c_in != planes else nn.Identity()

    def convs(self) -> list[nn.Module]:
        return list(self.body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for conv, bn in zip(self.body, self.bns):
            out = self.relu(bn(conv(out)))
        return out + self.shortcut(x)


class Backbone(nn.Module):
    """A DASH backbone: input (N, C, H, W) (H == 1 for kind "1d"), output (N, classes) logits."""

    def __init__(self, kind: str, stem: nn.Module | None, blocks: list[nn.Module], head: Head):
        super().__init__()
        self.kind = check_kind(kind)
        self.stem = stem if stem is not None else nn.Identity()
        self.blocks = nn.Sequential(*blocks)
        self.head = head

    def searchable(self) -> list[nn.Module]:
        """The factory's modules, in layer_index order."""
        out = [] if isinstance(self.stem, nn.Identity) else [self.stem]
        for block in self.blocks:
            out += block.convs()
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "1d":
            x = torch.flatten(x, 2)  # (N, C, 1, L) -> (N, C, L): one Reshape in ONNX
        return self.head(self.blocks(self.stem(x)))


def build_backbone(kind: str, in_channels: int, num_classes: int, factory: ConvFactory, *, width: int,
                   depth: int) -> Backbone:
    """The backbone of `kind` with every searchable convolution made by `factory` (module docstring)."""
    slots = conv_slots(kind, in_channels, width, depth)
    convs = [factory(i, s.c_in, s.c_out, s.stride) for i, s in enumerate(slots)]
    stem = None
    if kind == "2d":
        stem, convs, slots = convs[0], convs[1:], slots[1:]
    per = CONVS_PER_BLOCK[kind]
    blocks: list[nn.Module] = []
    for b in range(0, len(slots), per):
        first, mods = slots[b], convs[b:b + per]
        if kind == "2d":
            blocks.append(WideBlock(mods[0], mods[1], first.c_in, first.c_out, slots[b + 1].stride))
        else:
            blocks.append(ResBlock1d(mods, first.c_in, first.c_out))
    return Backbone(kind, stem, blocks, Head(kind, slots[-1].c_out, num_classes))


class AsSequence(nn.Module):
    """A 1-D module run on the (N, C, 1, L) layout the profiler feeds: squeeze H, run, put it back
    (a latency table times a 1-D op alone through this)."""

    def __init__(self, module: nn.Module, keep_h: bool = True):
        super().__init__()
        self.module, self.keep_h = module, keep_h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(torch.flatten(x, 2))
        return y.unsqueeze(2) if self.keep_h else y
