"""The plan of `space=dash`'s backbones, without torch: which searchable convolutions a backbone
has, in layer order, with their channels and strides. hwnas/spaces/dash_net.py builds the torch
network from it, hwnas/spaces/dash.py the op list; see dash_net's docstring for the backbones.
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("1d", "2d")
STEM_WIDTH = 16  # Wide-ResNet's first conv (nStages[0])
STAGE_MULT = {"2d": (1, 2, 4), "1d": (1, 2, 2)}
STAGE_STRIDE = {"2d": (1, 2, 2), "1d": (1, 1, 1)}
CONVS_PER_BLOCK = {"2d": 2, "1d": 3}


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
    """Every searchable convolution of the backbone, in layer order (dash_net's docstring)."""
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
