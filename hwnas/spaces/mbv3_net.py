"""The MobileNetV3 network of `space=mbv3` in torch (Once-for-All's MobileNetV3 macro space).

stem (conv 3x3 s2, BN, hard-swish) -> first block (depthwise-separable 3x3, ReLU, residual)
-> 5 stages of 2-4 inverted-residual blocks (1x1 expand, depthwise kxk, optional squeeze-excite,
1x1 project; BN after every conv; residual when the shape is kept) -> head (1x1 expand to 6x
the last width, BN, hard-swish, global average pool, 1x1 conv to 1280, hard-swish, linear).
"""
from __future__ import annotations

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of `divisor`, never below 90% of `value`."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return out


def act_layer(hswish: bool) -> nn.Module:
    return nn.Hardswish() if hswish else nn.ReLU()


class ConvBNAct(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool | None = False):
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(c_out)]
        if act is not None:
            layers.append(act_layer(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """MobileNetV3's SE: global pool, 1x1 reduce (1/4, ReLU), 1x1 expand, hard-sigmoid gate."""

    def __init__(self, channels: int):
        super().__init__()
        mid = make_divisible(channels / 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, mid, 1)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(mid, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """Inverted residual block; expand=1 is the depthwise-separable first block (no 1x1 expand)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, stride: int, se: bool, hswish: bool):
        super().__init__()
        mid = c_in if expand == 1 else make_divisible(c_in * expand)
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(c_in, mid, 1, act=hswish))
        layers.append(ConvBNAct(mid, mid, kernel, stride, groups=mid, act=hswish))
        if se:
            layers.append(SqueezeExcite(mid))
        layers.append(ConvBNAct(mid, c_out, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class Head(nn.Module):
    """Final 1x1 expand + BN + hard-swish, global pool, 1x1 feature mix + hard-swish, classifier."""

    def __init__(self, c_in: int, c_mid: int, c_feat: int, num_classes: int):
        super().__init__()
        self.expand = ConvBNAct(c_in, c_mid, 1, act=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mix = nn.Sequential(nn.Conv2d(c_mid, c_feat, 1, bias=False), nn.Hardswish())
        self.classifier = nn.Linear(c_feat, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.mix(self.pool(self.expand(x))), 1))


class MBV3Network(nn.Module):
    """`layers`: the (kind, args) list MBV3Space.layer_plan gives, so the network, its op list
    and the latency table's modules come from one plan."""

    def __init__(self, layers: list[tuple[str, tuple]]):
        super().__init__()
        self.layers = nn.Sequential(*(make_layer(kind, args) for kind, args in layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def make_layer(kind: str, args: tuple) -> nn.Module:
    if kind == "stem":
        c_in, c_out, stride = args
        return ConvBNAct(c_in, c_out, 3, stride, act=True)
    if kind == "mbconv":
        return MBConv(*args)
    if kind == "head":
        return Head(*args)
    raise ValueError(f"unknown mbv3 layer kind {kind!r}")
