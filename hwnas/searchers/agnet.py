"""AG-Net: generative NAS that learns where to look (Lukasik, Jung, Keuper 2022), hardware-aware.

A generator (the decoder of a VAE over the categorical vector, `agnet_generator.py`) maps
z ~ N(0, I) to architectures. It is pretrained without queries on architectures drawn from the
feasible part of the space (latency is free, so it starts where queries are allowed). Each
iteration then:
1. fits the surrogate (the ensemble's error posterior; latency and energy come from the table)
   on every evaluation;
2. fine-tunes the generator on the evaluated feasible architectures weighted toward the best
   (weighted retraining, w = 1 / (k N + rank), rank by non-dominated rank on
   (error, latency[, energy]) then crowding; infeasible ones weigh zero);
3. back-propagates through the differentiable surrogate (straight-through Gumbel-softmax on
   the decoder's outputs) toward low predicted error, traded against a differentiable linear
   latency (and energy) model with a trade-off weight drawn per sample, so the generator is
   pulled along the whole front rather than to one point, plus a hinge over the budget;
4. samples many candidates, drops the infeasible, degenerate and already evaluated ones, and
   queries a batch chosen greedily by expected hypervolume improvement (EHVI) of the
   surrogate's error posterior with the exact latency/energy, each pick added to the front at
   its predicted mean ("Kriging believer") so a batch spreads along the front.
"""
from __future__ import annotations

import hashlib
import json
import sys
import warnings

import numpy as np
import torch

from hwnas.io import atomic_path
from hwnas.pareto import nd_ranks
from hwnas.searchers._generative import (
    BatchSearcher,
    WorthCache,
    rank_order,
)
from hwnas.searchers.agnet_generator import CategoricalVAE
from hwnas.searchers.base import register_searcher
from hwnas.searchers.configs import AGNetConfig
from hwnas.seeding import seeded, torch_generator
from hwnas.spaces.base import Arch
from hwnas.surrogates import JointSurrogate
from hwnas.surrogates.acquisition import expected_improvement, hv_improvement
from hwnas.userdirs import user_cache_dir

_CACHE_VERSION = 1  # bump when pretraining changes what it computes


@register_searcher("agnet", AGNetConfig)
class AGNet(BatchSearcher):
    def __init__(self, problem, config: AGNetConfig, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        c = config
        self.cards = list(self.space.cardinalities())
        with seeded(self.seed):
            self.vae = CategoricalVAE(self.cards, c.latent, c.hidden)
        self.opt = torch.optim.Adam(self.vae.parameters(), lr=c.lr)
        self.gen = torch_generator(self.seed)
        self.surrogate = JointSurrogate(problem, seed=self.seed, n_members=c.surrogate_members,
                                        hidden=c.surrogate_hidden, steps=c.surrogate_steps,
                                        n_samples=c.ehvi_samples)
        self.worth = WorthCache(problem)
        self._pretrain()

    # --- pretraining (no queries) --------------------------------------------------------
    def _pretrain(self) -> None:
        c = self.config
        rng = np.random.default_rng([self.seed, 1])  # its own stream: self.rng stays the searcher's
        pool = self.problem.feasible_pool()
        if pool is not None:
            idx = rng.choice(len(pool), size=min(c.pretrain_samples, len(pool)), replace=False)
            archs = [pool[i] for i in idx]
        else:
            archs = []
            for _ in range(50 * c.pretrain_samples):
                a = self.space.sample(rng)
                if self.problem.is_worth_querying(a):
                    archs.append(a)
                if len(archs) >= c.pretrain_samples:
                    break
            if not archs:  # a budget nothing random meets: learn the space itself
                archs = [self.space.sample(rng) for _ in range(c.pretrain_samples)]
        X = self._vectors(archs)
        self._pretrain_generator(X)
        # A differentiable stand-in for the free latency (and energy): a linear model on the
        # one-hot encoding, least squares over the same sample. Only steers the generator; the
        # exact table decides feasibility and the acquisition.
        oh = torch.cat([torch.nn.functional.one_hot(X[:, i], k).float() for i, k in enumerate(self.cards)], 1)
        A = np.concatenate([oh.numpy(), np.ones((len(oh), 1), dtype=np.float32)], 1).astype(np.float64)
        targets = [self.problem.latency(archs)]
        budgets = [self.problem.latency_budget]
        if self.problem.use_energy:
            targets.append(self.problem.energy(archs))
            budgets.append(self.problem.energy_budget)
        self._hw = []
        for t, b in zip(targets, budgets):
            t = np.asarray(t, dtype=np.float64)
            # Ridge normal equations: one-hot blocks plus an intercept are rank deficient, and a
            # pivoting least-squares solver then returns a different (equally good) solution
            # from call to call; the ridge term makes the solution unique and reproducible.
            coef = np.linalg.solve(A.T @ A + 1e-3 * np.eye(A.shape[1]), A.T @ t)
            self._hw.append((torch.from_numpy(coef.astype(np.float32)), float(t.mean()), float(t.std()) or 1.0, b))

    def _pretrain_generator(self, X: torch.Tensor) -> None:
        """Pretrain the VAE on X, or load what an earlier run with the same inputs trained.

        The cache holds the VAE's and Adam's state and the generator's RNG state after
        pretraining, so a run from the cache continues bit for bit like one that trained.
        """
        c = self.config
        if c.pretrain_steps == 0:
            return
        path = user_cache_dir() / "agnet" / f"pretrained-{self._cache_key(X)}.pt"
        if path.is_file():
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                self.vae.load_state_dict(state["vae"])
                self.opt.load_state_dict(state["opt"])
                self.gen.set_state(state["gen"])
                return
            except Exception as exc:  # any unreadable file: rebuild it, never fail the search
                warnings.warn(f"ignoring unreadable AG-Net cache {path} ({type(exc).__name__}); pretraining again",
                              stacklevel=2)
                with seeded(self.seed):  # start again from the same fresh state a first run has
                    self.vae = CategoricalVAE(self.cards, c.latent, c.hidden)
                self.opt = torch.optim.Adam(self.vae.parameters(), lr=c.lr)
                self.gen = torch_generator(self.seed)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=c.pretrain_steps, desc="agnet: pretraining the generator", unit="step",
                       file=sys.stderr, dynamic_ncols=True)
        try:
            self.vae.fit(X, None, c.pretrain_steps, self.opt, self.gen, on_step=bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save({"vae": self.vae.state_dict(), "opt": self.opt.state_dict(), "gen": self.gen.get_state()}, tmp)

    def _cache_key(self, X: torch.Tensor) -> str:
        """Hash of everything pretraining depends on: the space, the training set (which also
        fixes the device and constraints that chose it), the VAE's settings, the seed, torch."""
        c = self.config
        key = {"version": _CACHE_VERSION, "space": self.space.name, "cards": self.cards,
               "space_settings": {k: v for k, v in vars(self.space).items() if isinstance(v, (int, float))},
               "latent": c.latent, "hidden": c.hidden, "lr": c.lr, "steps": c.pretrain_steps,
               "samples": c.pretrain_samples, "seed": self.seed, "torch": torch.__version__,
               "data": hashlib.sha256(X.numpy().tobytes()).hexdigest()}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]

    def _vectors(self, archs) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.space.to_vector(a) for a in archs])).long()

    # --- one learned iteration (BatchSearcher.ask runs the random initial design) ------
    def _iterate(self) -> list[Arch]:
        self.surrogate.fit(self.evals)
        self._finetune()
        self._guide()
        return self._select(self._candidates())

    # --- one iteration ---------------------------------------------------------------------
    def _finetune(self) -> None:
        c = self.config
        order = rank_order(self.evals, c.objective)  # feasible only: infeasible weigh zero
        n = len(order)
        w = torch.tensor([1.0 / (c.weight_k * n + r) for r in range(n)])
        X = self._vectors([self.evals[i].arch for i in order])
        self.vae.fit(X, w, c.finetune_steps, self.opt, self.gen)

    def _guide(self) -> None:
        """Surrogate gradients into the decoder: low predicted error vs. low latency (energy)."""
        c = self.config
        if c.guide_steps == 0:
            return
        model = self.surrogate.model
        err_scale = model.y_std
        n_obj = 1 + len(self._hw) if c.objective == "pareto" else 1
        for _ in range(c.guide_steps):
            z = self.vae.prior(c.guide_samples, self.gen)
            x = self.vae.sample_onehot_st(z, self.gen, c.tau)
            mean_err, _ = model.predict_torch(x)
            terms = [(mean_err - model.y_mean) / err_scale]
            hinge = torch.zeros(len(x))
            xb = torch.cat([x, torch.ones(len(x), 1)], 1)
            for coef, mu, sd, budget in self._hw:
                pred = xb @ coef
                if c.objective == "pareto":
                    terms.append((pred - mu) / sd)
                if budget is not None:
                    hinge = hinge + torch.relu(pred / budget - 1.0)
            # One trade-off per sample, Dirichlet(1) drawn from our generator (normalised
            # exponentials), so the whole front is pulled on at once.
            if n_obj > 1:
                g = -torch.log(torch.rand(len(x), n_obj, generator=self.gen).clamp_min(1e-12))
                obj = (torch.stack(terms, 1) * (g / g.sum(1, keepdim=True))).sum(1)
            else:
                obj = terms[0]
            loss = c.guide_weight * (obj + 10.0 * hinge).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()

    def _candidates(self) -> list[Arch]:
        c = self.config
        out: dict[Arch, None] = {}
        for _ in range(c.candidate_tries):
            archs = [self.space.from_vector(x) for x in self.vae.sample(c.n_candidates, self.gen).tolist()]
            ok = self.worth(archs)
            for a, good in zip(archs, ok):
                if good and a not in self.seen:
                    out[a] = None
            if len(out) >= 4 * c.batch_size:
                break
        return list(out)

    def _select(self, cands: list[Arch]) -> list[Arch]:
        """Greedy EHVI batch over the candidates (Kriging believer), topped up at random."""
        c = self.config
        chosen: list[Arch] = []
        if cands and c.objective == "accuracy":
            # Single objective: expected improvement over the best feasible error, top batch.
            pred = self.surrogate.predict(cands)
            best = min(e.error for e in self.evals if e.feasible)
            ei = expected_improvement(pred["mean_err"], pred["std_err"], best)
            chosen = [cands[i] for i in np.lexsort((pred["mean_err"], -ei))[: c.batch_size]]
        elif cands:
            pred = self.surrogate.predict(cands)
            known = [pred["latency_ms"]] + ([pred["energy_mj"]] if "energy_mj" in pred else [])
            known = np.stack(known, axis=1)
            if len(cands) > c.acq_candidates:  # keep the optimistic Pareto-best for exact EHVI
                opt = np.column_stack([pred["mean_err"] - pred["std_err"], known])
                keep = np.lexsort((pred["mean_err"], nd_ranks(opt)))[: c.acq_candidates]
                keep.sort()
                cands = [cands[i] for i in keep]
                pred = {k: v[keep] for k, v in pred.items()}
                known = known[keep]
            lo, hi = self.surrogate.reference(self.evals)
            scale = hi - lo
            mean = (pred["mean_err"] - lo[0]) / scale[0]
            std = pred["std_err"] / scale[0]
            kn = (known - lo[1:]) / scale[1:]
            front = [(np.array(e.objectives()) - lo) / scale for e in self.evals if e.feasible]
            ref = np.full(len(lo), 1.1)
            left = list(range(len(cands)))
            for b in range(min(c.batch_size, len(cands))):
                rng = np.random.default_rng([self.seed, len(self.evals), b])
                hvi = hv_improvement(mean[left], std[left], kn[left], np.array(front), ref, c.ehvi_samples, rng)
                best = left[int(np.lexsort((mean[left], -hvi))[0])]  # ties: lower predicted error
                chosen.append(cands[best])
                front.append(np.concatenate([[mean[best]], kn[best]]))  # believe the prediction
                left.remove(best)
        while len(chosen) < c.batch_size:  # a collapsed generator: explore at random
            a = self.sample_feasible(self.seen | set(chosen))
            if a in self.seen or a in chosen:
                break
            chosen.append(a)
        return chosen
