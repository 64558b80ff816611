"""AG-Net's generator: a VAE over the categorical vector whose decoder maps z ~ N(0, I) to an
architecture (one categorical distribution per position); registers no searcher.

Pretrained without queries on architectures drawn from the space; fine-tuned with per-sample
weights (weighted retraining toward the best) and, through a straight-through Gumbel-softmax on
its outputs, by gradients of a differentiable surrogate. NAS-Bench-201's cell is a fixed DAG
with an op per edge, so decoding the 6 op choices decodes the whole graph.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn


class CategoricalVAE(nn.Module):
    def __init__(self, cards: Sequence[int], latent: int = 8, hidden: int = 64):
        super().__init__()
        self.cards = list(cards)
        self.latent = latent
        dim = sum(self.cards)
        self.enc = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, dim))

    # --- pieces -----------------------------------------------------------------------
    def encode(self, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(onehot).chunk(2, dim=-1)
        return mu, logvar.clamp(-8.0, 8.0)

    def logits(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Per-position logits, n x cards[i] each."""
        return list(self.dec(z).split(self.cards, dim=-1))

    # --- training ---------------------------------------------------------------------
    def loss(self, X: torch.Tensor, weights: torch.Tensor, gen: torch.Generator, beta: float = 1.0) -> torch.Tensor:
        """Weighted negative ELBO of choices X (n x positions, long); weights sum to 1."""
        oh = torch.cat([nn.functional.one_hot(X[:, i], c).float() for i, c in enumerate(self.cards)], dim=1)
        mu, logvar = self.encode(oh)
        eps = torch.randn(mu.shape, generator=gen)
        z = mu + eps * torch.exp(0.5 * logvar)
        rec = sum(nn.functional.cross_entropy(lg, X[:, i], reduction="none") for i, lg in enumerate(self.logits(z)))
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
        return ((rec + beta * kl) * weights).sum()

    def fit(self, X: torch.Tensor, weights: torch.Tensor | None, steps: int, opt: torch.optim.Optimizer,
            gen: torch.Generator, batch: int = 128, beta: float = 1.0,
            on_step: Callable[[], None] | None = None) -> float:
        """`steps` Adam steps on minibatches drawn (with `gen`) in proportion to `weights`;
        `on_step` is called after each (a progress bar)."""
        n = len(X)
        w = torch.full((n,), 1.0 / n) if weights is None else weights / weights.sum()
        last = 0.0
        for _ in range(steps):
            if n > batch:  # draw the minibatch by weight: heavy examples are seen more often
                idx = torch.multinomial(w, batch, replacement=True, generator=gen)
                Xb, wb = X[idx], torch.full((batch,), 1.0 / batch)
            else:
                Xb, wb = X, w
            loss = self.loss(Xb, wb, gen, beta)
            opt.zero_grad()
            loss.backward()
            opt.step()
            last = loss.item()
            if on_step is not None:
                on_step()
        return last

    # --- generation -------------------------------------------------------------------
    def prior(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.latent, generator=gen)

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """n x positions long tensor: z ~ N(0, I), then each position drawn from its categorical."""
        with torch.no_grad():
            lgs = self.logits(self.prior(n, gen))
            return torch.stack([torch.multinomial(torch.softmax(lg, -1), 1, generator=gen).squeeze(1)
                                for lg in lgs], dim=1)

    def sample_onehot_st(self, z: torch.Tensor, gen: torch.Generator, tau: float = 1.0) -> torch.Tensor:
        """Straight-through Gumbel-softmax: a hard one-hot (n x sum(cards)) forward, soft gradients back."""
        parts = []
        for lg in self.logits(z):
            u = torch.rand(lg.shape, generator=gen).clamp(1e-10, 1 - 1e-10)
            y = torch.softmax((lg - torch.log(-torch.log(u))) / tau, dim=-1)
            hard = nn.functional.one_hot(y.argmax(-1), lg.shape[-1]).float()
            parts.append(hard + y - y.detach())
        return torch.cat(parts, dim=1)
