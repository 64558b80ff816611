"""qNEHVI over a discrete candidate set with only the error modelled (BoTorch), shared by
`mobo` and `lamoo`'s inner sampler.

Latency (and energy) are known for free from the problem's latency source, so they are not
modelled: a candidate's tensor is its one-hot encoding (d columns) followed by its known
objectives (k columns, normalised, to be minimised). A SingleTaskGP looks only at the
encoding (its kernel's active dimensions) and models -error; a GenericDeterministicModel
reads -known objectives off the extra columns; ModelList(gp, deterministic) is the model
qLogNoisyExpectedHypervolumeImprovement sees. The batch is chosen greedily over the
candidates by optimize_acqf_discrete (q sequential picks, earlier ones pending).

Imports torch/BoTorch: only searcher modules import this (they load lazily).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from hwnas.problem import Evaluation, SearchProblem
from hwnas.spaces.base import Arch


class KnownObjectives:
    """Latency (and energy) of architectures, normalised so the reference point is 1.

    lo: the fastest of `reference` (a seeded sample of the space, or the feasible pool); hi:
    the budget when there is one, else the slowest of `reference`, as the scorer does.
    """

    def __init__(self, problem: SearchProblem, reference: Sequence[Arch]):
        self.problem = problem
        cols = [problem.latency(reference)]
        budgets = [problem.latency_budget]
        if problem.use_energy:
            cols.append(problem.energy(reference))
            budgets.append(problem.energy_budget)
        self.lo = np.array([float(np.min(c)) for c in cols])
        self.hi = np.array([float(b) if b is not None else float(np.max(c)) for c, b in zip(cols, budgets)])

    @property
    def k(self) -> int:
        return len(self.lo)

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        """n x k, 0 at the fastest reference architecture, 1 at the budget (or the slowest)."""
        cols = [self.problem.latency(archs)]
        if self.problem.use_energy:
            cols.append(self.problem.energy(archs))
        F = np.stack(cols, axis=1).astype(np.float64)
        return (F - self.lo) / np.maximum(self.hi - self.lo, 1e-12)


@dataclass
class QNEHVISettings:
    q: int  # picks per call
    mc_samples: int  # quasi-Monte Carlo samples of the GP posterior
    fit_iters: int  # L-BFGS iterations of the marginal-likelihood fit


def error_reference(evals: list[Evaluation], n_first: int) -> float:
    """The error coordinate of the reference point: the median error of the first `n_first`
    feasible evaluations (the random initial design, an unbiased look at the space), as the
    scorer ignores what is worse than the space's median."""
    errs = [ev.error for ev in evals if ev.feasible][: max(n_first, 1)]
    return float(np.median(errs)) if errs else 100.0


def propose(X: np.ndarray, err: np.ndarray, K: np.ndarray, base: np.ndarray, Xc: np.ndarray, Kc: np.ndarray,
            err_ref: float, s: QNEHVISettings, seed: int) -> list[int]:
    """Indices into the candidates of the q picked by qLogNEHVI, best first.

    X: n x d encodings of the evaluated feasible architectures, err: (n,), K: n x k their
    known objectives (normalised, minimised, reference 1); base: (n,) bool, the rows whose
    objectives make the observed front (the feasible ones; all rows train the GP). Xc: c x d, Kc: c x k candidates.
    Deterministic for `seed` (torch's global RNG is forked, the sampler seeded).
    """
    from botorch.acquisition.multi_objective.logei import (
        qLogNoisyExpectedHypervolumeImprovement,
    )
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import GenericDeterministicModel, SingleTaskGP
    from botorch.models.model import ModelList
    from botorch.models.utils.gpytorch_modules import (
        get_covar_module_with_dim_scaled_prior,
    )
    from botorch.optim import optimize_acqf_discrete
    from botorch.sampling import SobolQMCNormalSampler
    from botorch.sampling.index_sampler import IndexSampler
    from botorch.sampling.list_sampler import ListSampler
    from gpytorch.mlls import ExactMarginalLogLikelihood

    q = min(s.q, len(Xc))
    d, k = X.shape[1], K.shape[1]
    dt = torch.float64
    with torch.random.fork_rng(), warnings.catch_warnings():
        # Routine on a few one-hot points (jitter added, a fit stopped at maxiter): not the user's concern.
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        train_X = torch.tensor(np.hstack([X, K]), dtype=dt)
        # Error spread is what the GP models; a constant column (one sample) is jittered by Standardize.
        train_Y = torch.tensor(-err[:, None], dtype=dt)
        covar = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, active_dims=list(range(d)))
        gp = SingleTaskGP(train_X, train_Y, covar_module=covar)
        mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": s.fit_iters}})
        known = GenericDeterministicModel(lambda Z: -Z[..., d:d + k], num_outputs=k)
        model = ModelList(gp, known)
        sampler = ListSampler(SobolQMCNormalSampler(torch.Size([s.mc_samples]), seed=seed),
                              IndexSampler(torch.Size([s.mc_samples]), seed=seed))
        ref = torch.tensor([-err_ref] + [-1.0] * k, dtype=dt)
        acq = qLogNoisyExpectedHypervolumeImprovement(model, ref_point=ref, X_baseline=train_X[torch.as_tensor(base)],
                                                      sampler=sampler, prune_baseline=True)
        choices = torch.tensor(np.hstack([Xc, Kc]), dtype=dt)
        picked, _ = optimize_acqf_discrete(acq, q=q, choices=choices, unique=True)
    # Map the picked rows back to candidate indices (rows are unique: distinct architectures).
    out = []
    Z = choices.numpy()
    for row in picked.numpy():
        hit = np.nonzero(np.all(np.isclose(Z, row[None, :], rtol=0, atol=1e-12), axis=1))[0]
        out.append(int(hit[0]))
    return out


def one_hot(space, archs: Sequence[Arch]) -> np.ndarray:
    return np.stack([space.encode(a, "onehot") for a in archs]).astype(np.float64)


class QNEHVIPicker:
    """Picks k of a candidate list by qLogNEHVI given the evaluations so far (one GP fit per call).

    Shows one progress bar of the fits when `progress` (each fit takes about a second).
    """

    def __init__(self, problem: SearchProblem, known: KnownObjectives, settings: QNEHVISettings, seed: int,
                 n_init: int, progress: bool = False, label: str = "mobo"):
        self.problem, self.known, self.settings = problem, known, settings
        self.seed, self.n_init = int(seed), int(n_init)
        self.progress, self.label = progress, label
        self._bar = None

    def pick(self, evals: list[Evaluation], X: np.ndarray, cands: list[Arch], k: int) -> list[Arch]:
        """k of `cands` (all of them when there are no more); X: one-hot rows of `evals`."""
        if len(cands) <= k or not evals:
            return list(cands[:k])
        if self.progress and self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(desc=f"{self.label}: GP fit + qLogNEHVI", unit="fit", leave=False)
        archs = [ev.arch for ev in evals]
        err = np.array([ev.error for ev in evals], dtype=np.float64)
        base = np.array([ev.feasible for ev in evals], dtype=bool)
        if not base.any():
            return list(cands[:k])  # no front yet: the candidates are already a seeded uniform draw
        Xc = one_hot(self.problem.space, cands)
        # Seeded by the run's seed and how much it has seen: the same on a replayed (resumed) run.
        step_seed = (self.seed * 1_000_003 + len(evals)) % (2**31 - 1)
        picks = propose(X, err, self.known(archs), base, Xc, self.known(cands),
                        error_reference(evals, self.n_init), replace(self.settings, q=k), step_seed)
        if self._bar is not None:
            self._bar.update(1)
        return [cands[i] for i in picks]

