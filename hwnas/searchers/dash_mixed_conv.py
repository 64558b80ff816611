"""DASH's mixed convolution: one layer's candidates (kernel k, dilation d) weighted by
softmax(alpha), computed two ways that give the same numbers.

`FourierMixedConv` (the paper's): a convolution is linear in its kernel, so the softmax-weighted
sum of the candidates' convolutions equals one convolution with the weighted sum of their
kernels, each dilated (zeros between taps) and zero-padded, centred, to the largest span
S = max d*(k-1)+1. That one kernel is applied through the FFT, whose cost does not grow with
the kernel's size: the mixture costs about one convolution, whatever the number of candidates.

`NaiveMixedConv` (the baseline the paper compares to): every candidate's convolution run on its
own, the outputs summed with the same weights.

Both take (N, c_in, L) in 1-D and (N, c_in, H, W) in 2-D, pad 'same' (each candidate's own
padding d*(k-1)//2, equal to centring it in the span) and give (N, c_out, ceil(L/stride)...).
Stride: the FFT path computes the stride-1 output and keeps every stride-th sample, as the
authors' code does (a strided same-padded convolution is exactly that subsample).
Every candidate has its own weights, as in the authors' code; the architecture logits `alpha`
belong to the layer.
"""
from __future__ import annotations

from typing import Sequence

from scipy.fft import next_fast_len

import torch
from torch import nn
from torch.nn import functional as F

Candidate = tuple[int, int]  # (kernel, dilation)


def span(kernel: int, dilation: int) -> int:
    """Receptive field of one dilated kernel along one axis."""
    return dilation * (kernel - 1) + 1


def _check(dims: int, candidates: Sequence[Candidate], stride: int) -> list[Candidate]:
    cands = [(int(k), int(d)) for k, d in candidates]
    if dims not in (1, 2):
        raise ValueError(f"a mixed convolution is 1-D or 2-D, got dims={dims}")
    if not cands:
        raise ValueError("a mixed convolution needs at least one (kernel, dilation) candidate")
    for k, d in cands:
        if k < 1 or k % 2 == 0 or d < 1:
            # an even kernel has no centre: 'same' padding would shift it against the odd ones
            raise ValueError(f"candidate (kernel={k}, dilation={d}): kernels must be odd and >= 1, dilations >= 1")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return cands


class _MixedConvBase(nn.Module):
    def __init__(self, dims: int, c_in: int, c_out: int, candidates: Sequence[Candidate], stride: int = 1):
        super().__init__()
        self.dims, self.c_in, self.c_out, self.stride = dims, int(c_in), int(c_out), int(stride)
        self.candidates = _check(dims, candidates, self.stride)
        self.weights = nn.ParameterList()
        for k, _ in self.candidates:
            w = torch.empty(self.c_out, self.c_in, *([k] * dims))
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")  # as torch's conv nets (ResNet)
            self.weights.append(nn.Parameter(w))
        # Architecture logits: zero = uniform mixture at the start, as DARTS and DASH (~1e-3 noise there).
        self.alpha = nn.Parameter(torch.zeros(len(self.candidates)))

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.alpha, dim=0)

    def chosen(self) -> Candidate:
        """The candidate with the largest logit (the discretised layer)."""
        return self.candidates[int(torch.argmax(self.alpha.detach()))]

    def extra_repr(self) -> str:
        return f"dims={self.dims}, c_in={self.c_in}, c_out={self.c_out}, stride={self.stride}, candidates={self.candidates}"


class NaiveMixedConv(_MixedConvBase):
    """sum_i softmax(alpha)_i * conv(x, w_i, dilation d_i): one convolution per candidate."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = F.conv1d if self.dims == 1 else F.conv2d
        p = self.probs()
        out = None
        for i, (k, d) in enumerate(self.candidates):
            y = p[i] * conv(x, self.weights[i], stride=self.stride, padding=d * (k - 1) // 2, dilation=d)
            out = y if out is None else out + y
        return out


class FourierMixedConv(_MixedConvBase):
    """The same mixture as NaiveMixedConv, as one convolution with the mixed kernel, via FFT."""

    def __init__(self, dims: int, c_in: int, c_out: int, candidates: Sequence[Candidate], stride: int = 1):
        super().__init__(dims, c_in, c_out, candidates, stride)
        self.span = max(span(k, d) for k, d in self.candidates)
        # Where each candidate's taps land inside the span (centred): buffers, so .to(device) moves them.
        for i, (k, d) in enumerate(self.candidates):
            off = (self.span - span(k, d)) // 2
            self.register_buffer(f"_taps{i}", off + d * torch.arange(k), persistent=False)

    def mixed_kernel(self, keep: Sequence[int] | None = None) -> torch.Tensor:
        """(c_out, c_in, K1[, K2]): sum_i p_i * (w_i dilated and centred in the span S), cropped
        to the central keep[a] taps of each axis (default: the whole span)."""
        p = self.probs()
        S = self.span
        keep = [S] * self.dims if keep is None else [int(k) for k in keep]
        out = None
        for i in range(len(self.candidates)):
            taps = getattr(self, f"_taps{i}")
            w = p[i] * self.weights[i]
            # scatter the taps axis by axis (last first): (.., k, k) -> (.., k, K2) -> (.., K1, K2);
            # taps outside the crop are dropped before anything of the span's size is allocated
            for j, axis in enumerate(range(-1, -self.dims - 1, -1)):
                size = keep[self.dims - 1 - j]
                t = taps - (S - size) // 2
                inside = (t >= 0) & (t < size)
                if not bool(inside.all()):
                    w = w.index_select(axis, torch.nonzero(inside).flatten())
                    t = t[inside]
                shape = list(w.shape)
                shape[axis] = size
                w = w.new_zeros(shape).index_add(axis, t, w)
            out = w if out is None else out + w
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[2:])
        # Taps more than L-1 from the centre only ever meet the zero padding: the kernel is built
        # cropped to 2L-1 per axis, which changes no output and shrinks the FFT and the kernel
        # (a 7x7 input at span 121: 13x13 instead of 121x121 per channel pair).
        keep = [min(self.span, 2 * s - 1) for s in size]
        kernel = self.mixed_kernel(keep)
        pads = [(k - 1) // 2 for k in keep]
        # Padded by the kernel's half-width on each side, a circular correlation of length
        # >= L + 2*pad never wraps for the L outputs kept, so it equals the zero-padded one;
        # rounded up to a length the FFT is fast at (zeros at the end change nothing).
        n = [next_fast_len(s + 2 * p) for s, p in zip(size, pads)]
        dims = tuple(range(2, 2 + self.dims))
        xp = F.pad(x, [q for p in reversed(pads) for q in (p, p)])
        X = torch.fft.rfftn(xp, s=n, dim=dims)
        K = torch.fft.rfftn(kernel, s=n, dim=dims)
        # Cross-correlation (what conv layers compute) = product with the kernel's conjugate, and
        # the channel sum a matrix product per frequency: (F, B, C) @ (F, C, O). In real numbers,
        # one batched matmul [Xr Xi] @ [[Kr -Ki] [Ki Kr]] = [Yr Yi] (with conj(K)): torch's complex
        # bmm on CPU loops over the batch in Python-visible copies, ~10x slower.
        b, f = X.shape[0], X.shape[2:]
        Xf = X.reshape(b, self.c_in, -1).permute(2, 0, 1)  # (F, B, C)
        Kf = K.reshape(self.c_out, self.c_in, -1).permute(2, 1, 0)  # (F, C, O)
        A = torch.cat([Xf.real, Xf.imag], dim=2)
        M = torch.cat([torch.cat([Kf.real, -Kf.imag], dim=2), torch.cat([Kf.imag, Kf.real], dim=2)], dim=1)
        R = torch.bmm(A, M)  # (F, B, 2 * O)
        Y = torch.complex(R[..., :self.c_out], R[..., self.c_out:]).permute(1, 2, 0).reshape(b, self.c_out, *f)
        y = torch.fft.irfftn(Y, s=n, dim=dims)
        index = tuple(slice(0, s, self.stride) for s in size)
        return y[(..., *index)].contiguous()


def mixed_conv(kind: str, dims: int, c_in: int, c_out: int, candidates: Sequence[Candidate],
               stride: int = 1) -> _MixedConvBase:
    """A mixed convolution by kind: 'fourier' (DASH) or 'naive' (one conv per candidate)."""
    cls = {"fourier": FourierMixedConv, "naive": NaiveMixedConv}.get(kind)
    if cls is None:
        raise ValueError(f"mixed convolution kind must be fourier or naive, got {kind!r}")
    return cls(dims, c_in, c_out, candidates, stride)


def copy_weights(src: _MixedConvBase, dst: _MixedConvBase) -> None:
    """dst gets src's candidate weights and logits (to compare the two kinds on equal terms)."""
    dst.load_state_dict(src.state_dict(), strict=False)


def expected_cost(layer: _MixedConvBase, cost: torch.Tensor) -> torch.Tensor:
    """softmax(alpha) . cost: the layer's expected cost (e.g. latency) under the mixture."""
    return torch.dot(layer.probs(), cost.to(layer.alpha.dtype))


__all__ = ["Candidate", "FourierMixedConv", "NaiveMixedConv", "mixed_conv", "copy_weights", "expected_cost", "span"]
