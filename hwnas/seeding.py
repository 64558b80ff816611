"""Seeded randomness that leaves the global RNGs alone (one helper, used by every module).

A search resumes by replaying its history through ask/tell, and a profile or an export must
give the same weights whatever ran before: so randomness comes from the seed alone, and no
caller's global torch state is consumed or changed.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Inside: torch's global CPU RNG seeded with `seed` (e.g. for module initialisers, which
    take no generator); on exit it is restored to what it was before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def torch_generator(seed: int) -> torch.Generator:
    """A private CPU generator seeded with `seed`, for the ops that take `generator=`."""
    return torch.Generator().manual_seed(int(seed))
