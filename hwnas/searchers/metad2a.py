"""MetaD2A: generate architectures for a new task from what other tasks taught (Lee et al. 2021),
hardware-aware, on NAS-Bench-201.

Meta-trained once on the benchmark's source (task, device) pairs, never on the target task or
the target device (hwnas/meta/transfer.py; cached, `hwnas-meta train-generator` builds it too):
a set-conditioned predictor and a generator conditioned on the task's set encoding, the target
device's hardware embedding (its latencies of the reference architectures: free, the latency
table is known) and a latency cap (hwnas/meta/metad2a.py). No random initial design: the first
batch comes from the prior the sources taught. Each iteration then
1. encodes the target task from every (architecture, score) observed so far (the context);
2. generates candidates at `cap_levels` latency caps, quantiles of the feasible latencies up
   to the budget, so the candidates spread along the front; drops the infeasible, degenerate
   and already evaluated ones (latency is free);
3. ranks them with the set-conditioned predictor: with 3 or more observations its score is
   calibrated to the target's error on the better half of them (a line; its residual spread is
   the uncertainty) and the batch is picked greedily by expected hypervolume improvement; before
   that (or while the line says nothing), the best predicted of each latency band between two
   caps, from the fastest-growing band down;
4. evaluates the best few and adds them to the context.
"""
from __future__ import annotations

import numpy as np

from hwnas.errors import ConfigError
from hwnas.problem import Evaluation
from hwnas.searchers._generative import WorthCache
from hwnas.searchers.base import Searcher, register_searcher
from hwnas.searchers.configs import MetaD2AConfig
from hwnas.spaces.base import Arch


def settings_of(c: MetaD2AConfig):
    from hwnas.meta.metad2a import D2ASettings

    return D2ASettings(hidden=c.meta_hidden, steps=c.meta_steps, episodes=c.meta_episodes,
                       context_max=c.meta_context_max, query_size=c.meta_query_size, targets=c.meta_targets,
                       top_fraction=c.meta_top_fraction, lr=c.meta_lr)


@register_searcher("metad2a", MetaD2AConfig)
class MetaD2A(Searcher):
    def __init__(self, problem, config: MetaD2AConfig, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        from hwnas.data.paths import resolve_data_dir
        from hwnas.meta.metad2a import Models
        from hwnas.meta.transfer import d2a_model, sources_record, split_sources
        from hwnas.spaces.nb201 import NB201Space

        if not isinstance(self.space, NB201Space):
            raise ConfigError(f"searcher=metad2a is meta-trained on NAS-Bench-201's tasks and devices; "
                              f"space {self.space.name!r} is not nb201 (use space=nb201, or another searcher)")
        c = config
        data_dir = problem.data_dir if problem.data_dir is not None else resolve_data_dir(None)
        split = split_sources(data_dir, problem.task, problem.device, c.exclude_tasks, c.exclude_devices)
        state, path, _ = d2a_model(data_dir, settings_of(c), c.meta_seed, problem.task, problem.device,
                                       c.exclude_tasks, c.exclude_devices, progress=progress)
        self.record = {"target_task": problem.task, "target_device": problem.device,
                       **sources_record(state, path, split)}
        self.models = Models(state)
        self.evals: list[Evaluation] = []
        self.seen: set[Arch] = set()
        self.worth = WorthCache(problem)
        # The target device's hardware embedding: its latencies of the reference cells (free).
        refs = [self.space.from_index(int(i)) for i in self.models.reference]
        self.hw, self.mu, self.sd = self.models.hardware_embedding(problem.latency(refs))
        pool = problem.feasible_pool()
        if pool is None:  # a source without an index (fitted, profiled): the space is small, enumerate it
            allowed = list(self.space.enumerate())
            pool = [a for a, ok in zip(allowed, problem.worth_querying(allowed)) if ok]
        if not pool:
            raise ConfigError("searcher=metad2a: no architecture meets the constraints")
        lat = problem.latency(pool)
        qs = np.arange(1, c.cap_levels + 1) / c.cap_levels
        self.caps = np.quantile(lat, qs)  # the last is the largest feasible latency
        self.lat_range = (float(lat.min()), float(lat.max()))
        self.pool = pool

    def describe(self) -> dict:
        """What the run's summary records: the sources the models learnt from, what was excluded."""
        return self.record

    # --- ask / tell ------------------------------------------------------------------------
    def tell(self, evaluations: list[Evaluation]) -> None:
        self.evals.extend(evaluations)
        self.seen.update(e.arch for e in evaluations)

    def _context(self) -> tuple[np.ndarray, np.ndarray]:
        ok = [e for e in self.evals if not e.failed]  # a failed query has no score to learn from
        ops = np.array([self.space.to_vector(e.arch) for e in ok], dtype=np.int64).reshape(-1, 6)
        return ops, np.array([-e.error for e in ok], dtype=float)

    def ask(self) -> list[Arch]:
        cands = self._candidates(*self._context())
        batch = self._select(cands) if cands else []
        while len(batch) < self.config.batch_size:  # the generator gave too few new ones: explore
            a = self.sample_feasible(self.seen | set(batch))
            if a in self.seen or a in batch:
                break  # the feasible space is exhausted
            batch.append(a)
        self.seen.update(batch)
        return batch

    def _candidates(self, ctx_ops, ctx_values) -> list[Arch]:
        import torch

        c = self.config
        out: dict[Arch, None] = {}
        for attempt in range(c.candidate_tries):
            # One generator per (iteration, attempt): a replayed search asks exactly the same.
            gen = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, len(self.evals), attempt])
                                                    .generate_state(1)[0]))
            for cap in self.caps:
                cap_z = (np.log(cap) - self.mu) / self.sd
                ops = self.models.generate(c.n_generate, ctx_ops, ctx_values, self.hw, cap_z, gen,
                                           c.temperature * 2 ** attempt)
                archs = [self.space.from_vector(v) for v in ops.tolist()]
                for a, good in zip(archs, self.worth(archs)):
                    if good and a not in self.seen:
                        out[a] = None
            if len(out) >= 4 * c.batch_size:
                break
        if c.local:
            for a in self._front_neighbours():
                out[a] = None
        return list(out)

    def _front_neighbours(self) -> list[Arch]:
        """Every one-edit neighbour of the observed front that is worth querying and new: the
        generator seldom emits one exact cell, the front's neighbourhood holds the next ones."""
        from hwnas.pareto import non_dominated

        feas = [e for e in self.evals if e.feasible]
        if not feas:
            return []
        front = [feas[i].arch for i in np.nonzero(non_dominated(np.array([e.objectives() for e in feas])))[0]]
        out: dict[Arch, None] = {}
        for a in front:
            v = self.space.to_vector(a)
            for pos in range(len(v)):
                for op in range(self.space.cardinalities()[pos]):
                    if op != v[pos]:
                        w = v.copy()
                        w[pos] = op
                        out[self.space.from_vector(w)] = None
        archs = [a for a in out if a not in self.seen]
        return [a for a, ok in zip(archs, self.worth(archs)) if ok]

    def _select(self, cands: list[Arch]) -> list[Arch]:
        c = self.config
        ctx_ops, ctx_values = self._context()
        ops = np.array([self.space.to_vector(a) for a in cands], dtype=np.int64)
        score = self.models.predict(ops, ctx_ops, ctx_values)
        model = self._calibration(ctx_ops, ctx_values)
        if c.objective == "accuracy":  # the papers' setting: the best predicted (expected improvement once calibrated)
            key = -score
            if model is not None:
                from hwnas.surrogates.acquisition import expected_improvement

                mean, std = model(ops, score)
                key = -expected_improvement(mean, std, min(e.error for e in self.evals if not e.failed))
            return [cands[i] for i in np.lexsort((np.arange(len(cands)), key))[: c.batch_size]]
        known = [self.problem.latency(cands)]
        if self.problem.use_energy:
            known.append(self.problem.energy(cands))
        known = np.stack(known, axis=1)
        if model is None:
            return self._by_band(cands, score, known[:, 0])
        mean, std = model(ops, score)
        return self._by_ehvi(cands, mean, std, known)

    def _calibration(self, ctx_ops, ctx_values):
        """The predictor's score calibrated to the target's error, corrected by what was observed.

        Bayesian linear regression of the observed errors on [1, predicted score, one-hot ops]:
        the score's weight is nearly free, the one-hot weights are shrunk (prior precision
        `c.correction`), so the meta-learnt prior ranks and the target's own observations correct
        it where they disagree. Returns a callable (ops, score) -> (mean error, std), or None with
        fewer than 3 observations or a line that says a higher score means a higher error.
        """
        c = self.config
        if len(ctx_values) < 3:
            return None
        s = self.models.predict(ctx_ops, ctx_ops, ctx_values)
        err = -np.asarray(ctx_values, dtype=float)
        mu, sd = float(err.mean()), float(err.std()) or 1.0
        y = (err - mu) / sd

        def phi(ops, score):
            onehot = np.eye(5)[np.asarray(ops, dtype=np.int64)].reshape(len(ops), -1)
            return np.column_stack([np.ones(len(ops)), score, onehot])

        P = phi(ctx_ops, s)
        prior = np.full(P.shape[1], float(c.correction))
        prior[:2] = 1e-4
        noise = 0.1  # observation noise variance in standardised units
        A = P.T @ P / noise + np.diag(prior)
        cov = np.linalg.inv(A)
        w = cov @ P.T @ y / noise
        if not w[1] < 0:
            return None

        def model(ops, score):
            Q = phi(ops, score)
            var = np.einsum("ij,jk,ik->i", Q, cov, Q)
            return mu + sd * (Q @ w), sd * np.sqrt(np.maximum(var, 1e-12))

        return model

    def _by_band(self, cands, score, latency) -> list[Arch]:
        """The best predicted candidate of each latency band between two caps, a band at a time
        (the starting band rotates per iteration), so a batch spreads along the front."""
        c = self.config
        edges = np.concatenate([[-np.inf], self.caps[:-1], [np.inf]])
        band = np.searchsorted(edges, latency, side="left") - 1  # band i: (edges[i], edges[i+1]]
        order = np.lexsort((np.arange(len(cands)), -score))  # best predicted first
        start = (len(self.evals) // c.batch_size) % len(self.caps)
        levels = [(len(self.caps) - 1 - start - k) % len(self.caps) for k in range(len(self.caps))]
        chosen: list[int] = []
        while len(chosen) < min(c.batch_size, len(cands)):
            before = len(chosen)
            for lv in levels:
                pick = next((int(i) for i in order if band[i] == lv and int(i) not in chosen), None)
                if pick is not None:
                    chosen.append(pick)
                if len(chosen) == c.batch_size:
                    break
            if len(chosen) == before:
                break
        return [cands[i] for i in chosen]

    def _by_ehvi(self, cands, mean, std, known) -> list[Arch]:
        """Greedy EHVI batch (each pick believed at its predicted error), as AG-Net's."""
        from hwnas.surrogates.acquisition import hv_improvement

        c = self.config
        feas = [e for e in self.evals if e.feasible]
        obs = np.array([e.objectives() for e in feas]) if feas else np.zeros((0, 1 + known.shape[1]))
        allF = np.vstack([obs, np.column_stack([mean, known])]) if len(obs) else np.column_stack([mean, known])
        lo, hi = allF.min(0), allF.max(0)
        scale = np.where(hi > lo, hi - lo, 1.0)
        m, s, kn = (mean - lo[0]) / scale[0], std / scale[0], (known - lo[1:]) / scale[1:]
        front = [(o - lo) / scale for o in obs]
        ref = np.full(len(lo), 1.1)
        left, chosen = list(range(len(cands))), []
        for b in range(min(c.batch_size, len(cands))):
            rng = np.random.default_rng([self.seed, len(self.evals), b])
            hvi = hv_improvement(m[left], s[left], kn[left], np.array(front).reshape(-1, len(lo)), ref,
                                 c.ehvi_samples, rng)
            best = left[int(np.lexsort((m[left], -hvi))[0])]  # ties: lower predicted error
            chosen.append(cands[best])
            front.append(np.concatenate([[m[best]], kn[best]]))
            left.remove(best)
        return chosen
