"""searcher=dash: the Fourier-domain mixed convolution, the supernet search with its latency
penalty, and the run it makes through the ordinary search."""
from __future__ import annotations

import pytest
import torch

from hwnas.searchers.dash_mixed_conv import FourierMixedConv, NaiveMixedConv, copy_weights, mixed_conv

# Odd kernels and dilations mixed; the largest span, 3*(7-1)+1 = 19, exceeds the 2-D input's sides.
CANDIDATES = [(3, 1), (5, 2), (7, 3), (3, 7), (1, 1)]


def _pair(dims: int, stride: int, seed: int = 0):
    torch.manual_seed(seed)
    fourier = FourierMixedConv(dims, 3, 4, CANDIDATES, stride).double()
    naive = NaiveMixedConv(dims, 3, 4, CANDIDATES, stride).double()
    with torch.no_grad():
        fourier.alpha.normal_()  # a non-uniform mixture: a wrong weight per candidate shows
    copy_weights(fourier, naive)
    return fourier, naive


@pytest.mark.parametrize("dims,shape", [(1, (2, 3, 23)), (1, (2, 3, 6)), (2, (2, 3, 12, 9))])
@pytest.mark.parametrize("stride", [1, 2])
def test_fourier_mixture_equals_the_sum_of_candidate_convolutions(dims, shape, stride):
    """Forward and every gradient (input, each candidate's weights, the logits) agree with the
    naive mixture to float64 round-off, odd and even lengths, stride 1 and 2, and inputs shorter
    than the largest span (the kernel is cropped to 2L-1 there)."""
    fourier, naive = _pair(dims, stride)
    x = torch.randn(*shape, dtype=torch.double)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    outs = [m(xi) for m, xi in zip((fourier, naive), xs)]
    assert outs[0].shape == outs[1].shape
    assert outs[0].shape[2:] == tuple(-(-s // stride) for s in shape[2:])  # 'same', then strided
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-10)
    g = torch.randn_like(outs[0])  # a random upstream gradient: every output element counts
    for o in outs:
        o.backward(g)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fourier.alpha.grad, naive.alpha.grad, rtol=1e-9, atol=1e-10)
    assert fourier.alpha.grad.abs().max() > 1e-3  # the logits do get a gradient
    for wf, wn in zip(fourier.weights, naive.weights):
        torch.testing.assert_close(wf.grad, wn.grad, rtol=1e-10, atol=1e-10)


def test_fourier_mixture_float32_and_one_candidate_is_a_plain_conv():
    """In float32 (what training uses) to float tolerance; a single candidate is nn.Conv's output."""
    fourier, naive = _pair(2, 1)
    fourier, naive = fourier.float(), naive.float()
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(fourier(x), naive(x), rtol=1e-4, atol=1e-4)
    one = FourierMixedConv(1, 2, 5, [(5, 3)], stride=2)
    conv = torch.nn.Conv1d(2, 5, 5, stride=2, padding=6, dilation=3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(one.weights[0])
    x = torch.randn(3, 2, 40)
    torch.testing.assert_close(one(x), conv(x), rtol=1e-4, atol=1e-5)


def test_mixed_conv_refuses_bad_candidates():
    with pytest.raises(ValueError, match="kernels must be odd"):
        FourierMixedConv(1, 1, 1, [(4, 1)])
    with pytest.raises(ValueError, match="fourier or naive"):
        mixed_conv("fft", 1, 1, 1, [(3, 1)])
