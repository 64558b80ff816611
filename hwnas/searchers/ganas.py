"""GA-NAS: generative adversarial NAS (Rezaei et al. 2021), hardware-aware and multi-objective.

Each iteration, the current top-k evaluated architectures are the "real" data. A
discriminator learns to tell them from the generator's samples; the generator, an
autoregressive policy that picks the cell's op edge by edge, is trained by a PPO-style
clipped policy gradient with the discriminator's probability of "real" as reward, the
samples drawn from the old policy and reweighted by the probability ratio (importance
sampling), so it moves toward the good region without spending queries. A batch of new,
unseen generated architectures is then queried and top-k updated.

Choices, and why:
- Discriminator: an MLP on the one-hot categorical vector, not a GNN. In NAS-Bench-201 every
  cell has the same DAG and only the op on each edge varies, so a GNN over the fixed graph
  sees nothing the per-edge one-hot lacks, and the MLP is far cheaper on one CPU core.
- Multi-objective "top-k": non-dominated rank on (error, latency[, energy]), ties broken by
  crowding distance. The real set is then spread along the current front, so the generator
  learns the whole trade-off and each batch extends the front; a per-iteration scalarisation
  sweep would swap the real set each round and keep the adversarial game from settling.
- Hardware awareness: latency is free, so a generated architecture over the budget (or a
  degenerate cell) gets `infeasible_reward` instead of the discriminator's score, and is
  never queried.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hwnas.searchers._generative import (
    BatchSearcher,
    WorthCache,
    rank_order,
    vectors_to_onehot,
)
from hwnas.searchers.base import register_searcher
from hwnas.searchers.configs import GANASConfig
from hwnas.seeding import seeded, torch_generator
from hwnas.spaces.base import Arch


class _Policy(nn.Module):
    """Autoregressive generator: a GRU picks position i's choice given the choices before it."""

    def __init__(self, cards: list[int], hidden: int):
        super().__init__()
        self.cards = list(cards)
        self.offsets = np.concatenate([[1], 1 + np.cumsum(self.cards)[:-1]]).tolist()  # token 0 = start
        self.embed = nn.Embedding(1 + sum(self.cards), hidden)
        self.pos = nn.Embedding(len(self.cards), hidden)
        self.cell = nn.GRUCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, c) for c in self.cards)
        self.hidden = hidden

    def _run(self, n: int, X: torch.Tensor | None, gen: torch.Generator | None):
        """Teacher-forced over X (n x len(cards)), or sampling with `gen` when X is None."""
        h = torch.zeros(n, self.hidden)
        tok = torch.zeros(n, dtype=torch.long)
        out, logp_sum, ent_sum = [], torch.zeros(n), torch.zeros(n)
        for i, c in enumerate(self.cards):
            h = self.cell(self.embed(tok) + self.pos.weight[i], h)
            logp = torch.log_softmax(self.heads[i](h), dim=-1)
            if X is None:
                x = torch.multinomial(logp.exp(), 1, generator=gen).squeeze(1)
            else:
                x = X[:, i]
            out.append(x)
            logp_sum = logp_sum + logp.gather(1, x[:, None]).squeeze(1)
            ent_sum = ent_sum - (logp.exp() * logp).sum(-1)
            tok = x + self.offsets[i]
        return torch.stack(out, dim=1), logp_sum, ent_sum

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            return self._run(n, None, gen)[0]

    def log_prob(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, lp, ent = self._run(len(X), X, None)
        return lp, ent


@register_searcher("ganas", GANASConfig)
class GANAS(BatchSearcher):
    def __init__(self, problem, config: GANASConfig, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        c = config
        self.cards = list(self.space.cardinalities())
        dim = sum(self.cards)
        with seeded(self.seed):
            self.policy = _Policy(self.cards, c.hidden)
        with seeded(self.seed + 1):
            self.disc = nn.Sequential(nn.Linear(dim, c.hidden), nn.ReLU(), nn.Linear(c.hidden, c.hidden), nn.ReLU(),
                                      nn.Linear(c.hidden, 1))
        self.g_opt = torch.optim.Adam(self.policy.parameters(), lr=c.lr)
        self.d_opt = torch.optim.Adam(self.disc.parameters(), lr=c.lr)
        self.gen = torch_generator(self.seed)
        self.worth = WorthCache(problem)

    # --- one learned iteration (BatchSearcher.ask runs the random initial design) ------
    def _iterate(self) -> list[Arch]:
        real = [self.evals[i].arch for i in rank_order(self.evals, self.config.objective)[: self.config.top_k]]
        self._train_discriminator(real)
        self._train_generator()
        return self._propose()

    # --- the adversarial game ------------------------------------------------------------
    def _d_logits(self, X: torch.Tensor) -> torch.Tensor:
        return self.disc(vectors_to_onehot(X, self.cards)).squeeze(-1)

    def _train_discriminator(self, real: list[Arch]) -> None:
        c = self.config
        Xr = torch.from_numpy(np.stack([self.space.to_vector(a) for a in real])).long()
        # At least as many fakes as reals (16 or more), drawn once from the current generator.
        Xf = self.policy.sample(max(len(real), 16), self.gen)
        X = torch.cat([Xr, Xf])
        y = torch.cat([torch.ones(len(Xr)), torch.zeros(len(Xf))])
        # Class weights: the two sets may differ in size; each side counts half.
        w = torch.cat([torch.full((len(Xr),), 0.5 / len(Xr)), torch.full((len(Xf),), 0.5 / len(Xf))])
        for _ in range(c.d_steps):
            loss = (nn.functional.binary_cross_entropy_with_logits(self._d_logits(X), y, reduction="none") * w).sum()
            self.d_opt.zero_grad()
            loss.backward()
            self.d_opt.step()

    def _reward(self, X: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            r = torch.sigmoid(self._d_logits(X))
        archs = [self.space.from_vector(x) for x in X.tolist()]
        ok = torch.from_numpy(self.worth(archs))
        return torch.where(ok, r, torch.full_like(r, self.config.infeasible_reward))

    def _train_generator(self) -> None:
        c = self.config
        for _ in range(c.g_rounds):
            X = self.policy.sample(c.g_samples, self.gen)
            with torch.no_grad():
                old_lp, _ = self.policy.log_prob(X)
            r = self._reward(X)
            adv = (r - r.mean()) / (r.std() + 1e-8)
            for _ in range(c.ppo_epochs):
                lp, ent = self.policy.log_prob(X)
                ratio = torch.exp(lp - old_lp)  # importance weight of the old policy's samples
                surr = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - c.clip, 1 + c.clip) * adv)
                loss = -surr.mean() - c.entropy_coef * ent.mean()
                self.g_opt.zero_grad()
                loss.backward()
                self.g_opt.step()

    def _propose(self) -> list[Arch]:
        """Up to batch_size new feasible generated architectures, most "real"-looking first."""
        c = self.config
        picked: dict[Arch, float] = {}
        for _ in range(c.candidate_tries):
            X = self.policy.sample(c.n_candidates, self.gen)
            with torch.no_grad():
                score = torch.sigmoid(self._d_logits(X)).tolist()
            archs = [self.space.from_vector(x) for x in X.tolist()]
            ok = self.worth(archs)
            for a, s, good in zip(archs, score, ok):
                if good and a not in self.seen and a not in picked:
                    picked[a] = s
            if len(picked) >= c.batch_size:
                break
        if c.rank_by_discriminator:
            ranked = sorted(picked, key=lambda a: (-picked[a], str(a)))[: c.batch_size]
        else:
            ranked = list(picked)[: c.batch_size]
        # A collapsed generator proposes nothing new: top up with random feasible architectures.
        while len(ranked) < c.batch_size:
            a = self.sample_feasible(self.seen | set(ranked))
            if a in self.seen or a in ranked:
                break
            ranked.append(a)
        return ranked
