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
   that, by predicted non-dominated rank and crowding;
4. evaluates the best few and adds them to the context.
"""
from __future__ import annotations

import numpy as np

from hwnas.errors import ConfigError
from hwnas.pareto import crowding_distance, nd_ranks
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
        state, path, built = d2a_model(data_dir, settings_of(c), c.meta_seed, problem.task, problem.device,
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
        return list(out)

    def _select(self, cands: list[Arch]) -> list[Arch]:
        c = self.config
        ctx_ops, ctx_values = self._context()
        ops = np.array([self.space.to_vector(a) for a in cands], dtype=np.int64)
        score = self.models.predict(ops, ctx_ops, ctx_values)
        if c.objective == "accuracy":
            return [cands[i] for i in np.lexsort((np.arange(len(cands)), -score))[: c.batch_size]]
        known = [self.problem.latency(cands)]
        if self.problem.use_energy:
            known.append(self.problem.energy(cands))
        known = np.stack(known, axis=1)
        calib = self._calibration(ctx_ops, ctx_values)
        if calib is None:
            return self._by_predicted_rank(cands, score, known)
        a, b, resid = calib
        return self._by_ehvi(cands, a + b * score, np.full(len(cands), resid), known)

    def _calibration(self, ctx_ops, ctx_values) -> tuple[float, float, float] | None:
        """(a, b, residual std) of error ~ a + b * predicted score on the better half of the context."""
        if len(ctx_values) < 3:
            return None
        s = self.models.predict(ctx_ops, ctx_ops, ctx_values)
        err = -ctx_values
        keep = np.argsort(err, kind="stable")[: max(3, (len(err) + 1) // 2)]  # the front's region
        A = np.column_stack([np.ones(len(keep)), s[keep]])
        coef, *_ = np.linalg.lstsq(A, err[keep], rcond=None)
        if not coef[1] < 0:  # a higher score must mean a lower error; otherwise the line says nothing
            return None
        resid = err[keep] - A @ coef
        spread = float(np.ptp(err[keep])) or 1.0
        return float(coef[0]), float(coef[1]), max(float(resid.std()), 1e-3 * spread)

    def _by_predicted_rank(self, cands, score, known) -> list[Arch]:
        F = np.column_stack([-score, known])
        ranks = nd_ranks(F)
        crowd = np.zeros(len(cands))
        for r in np.unique(ranks):
            sel = np.nonzero(ranks == r)[0]
            crowd[sel] = crowding_distance(F[sel])
        order = sorted(range(len(cands)), key=lambda i: (ranks[i], -crowd[i], -score[i], str(cands[i])))
        return [cands[i] for i in order[: self.config.batch_size]]

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
