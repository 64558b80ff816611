"""Multi-objective Bayesian optimisation with BoTorch (qLogNEHVI, Daulton et al.): the baseline
users of BoTorch and Ax would compare against.

Only the error is modelled (a SingleTaskGP on the one-hot encoding); latency and energy come
from the latency source for free, as a deterministic model beside the GP (hwnas/searchers/
_botorch.py). A seeded random feasible initial design of `n_init` architectures, then each
ask fits the GP to every evaluation and picks `batch_size` architectures greedily by
qLogNEHVI over a discrete candidate set: `n_candidates` unseen architectures worth querying
(a seeded draw from the feasible pool of a tabular space, else space samples that pass the
constraints) plus, with `local`, every one-edit neighbour of the observed front that is worth
querying. Infeasible architectures are never candidates, so no query is spent on them.

The reference point: the median error of the initial design (the scorer ignores what is worse
than the space's median error), and the latency (energy) budget, or the slowest reference
architecture without one.

Deterministic: a function of the seed and the told evaluations (numpy Generator; torch's RNG
forked and seeded per fit from the seed and the number of evaluations; seeded QMC sampler).
"""
from __future__ import annotations

import numpy as np

from hwnas.problem import Evaluation
from hwnas.searchers._botorch import (
    KnownObjectives,
    QNEHVIPicker,
    QNEHVISettings,
    one_hot,
)
from hwnas.searchers.base import Searcher, register_searcher
from hwnas.searchers.configs import MOBOConfig
from hwnas.spaces.base import Arch, sample_distinct

N_REFERENCE = 2000  # seeded space samples that set the latency (energy) scale of a non-tabular space


@register_searcher("mobo", MOBOConfig)
class MOBO(Searcher):
    def __init__(self, problem, config: MOBOConfig, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        self.pool = problem.feasible_pool()
        ref = self.pool if self.pool is not None else sample_distinct(self.space, N_REFERENCE, self.seed)
        self.known = KnownObjectives(problem, ref)
        self.picker = QNEHVIPicker(problem, self.known, QNEHVISettings(config.batch_size, config.mc_samples,
                                                                       config.fit_iters, config.kernel,
                                                                       config.n_screen, config.baseline_layers,
                                                                       config.warm_start),
                                   self.seed, config.n_init, progress, "mobo")
        self.evals: list[Evaluation] = []
        self.X = np.zeros((0, int(sum(self.space.cardinalities()))))
        self.seen: set[Arch] = set()  # asked (told or not): never asked again
        self._told: set[Arch] = set()

    def ask(self) -> list[Arch]:
        c = self.config
        if sum(ev.feasible for ev in self.evals) < c.n_init:
            return [self._take(self.sample_feasible(self.seen)) for _ in range(c.batch_size)]
        cands = self.candidates()
        if not cands:
            return [self._take(self.sample_feasible(self.seen))]
        return [self._take(a) for a in self.picker.pick(self.evals, self.X, cands, c.batch_size)]

    def tell(self, evaluations: list[Evaluation]) -> None:
        new = [ev for ev in evaluations if ev.arch not in self._told]
        for ev in new:
            self._told.add(ev.arch)
            self.evals.append(ev)
        if new:
            self.X = np.vstack([self.X, one_hot(self.space, [ev.arch for ev in new])])

    def _take(self, arch: Arch) -> Arch:
        self.seen.add(arch)
        return arch

    # --- the discrete candidate set -------------------------------------------------------
    def candidates(self) -> list[Arch]:
        """Unseen architectures worth querying: the front's neighbours, then a seeded draw."""
        c = self.config
        out: list[Arch] = []
        taken: set[Arch] = set()

        def add(archs) -> None:
            archs = [a for a in archs if a not in self.seen and a not in taken]
            if not archs:
                return
            ok = self.problem.worth_querying(archs)
            for a, good in zip(archs, ok):
                if good and a not in taken:
                    taken.add(a)
                    out.append(a)

        if c.local:
            add(self._front_neighbours())
        if self.pool is not None:
            free = [i for i in self.rng.permutation(len(self.pool))[: c.n_candidates + len(self.seen)]
                    if self.pool[i] not in self.seen]
            add([self.pool[i] for i in free[: c.n_candidates]])
        else:
            for _ in range(20):  # rejection rounds: the constraint may reject most samples
                before = len(out)
                add([self.space.sample(self.rng) for _ in range(c.n_candidates)])
                if len(out) - before >= c.n_candidates // 2 or len(out) >= 2 * c.n_candidates:
                    break
        return out

    def _front_neighbours(self) -> list[Arch]:
        """Every one-edit change of each observed non-dominated feasible architecture."""
        from hwnas.search_loop import front_of

        out = []
        for i in front_of(self.evals):
            vec = self.space.to_vector(self.evals[i].arch)
            for pos, card in enumerate(self.space.cardinalities()):
                for v in range(card):
                    if v != vec[pos]:
                        w = np.array(vec, copy=True)
                        w[pos] = v
                        out.append(self.space.from_vector(w))
        return out
