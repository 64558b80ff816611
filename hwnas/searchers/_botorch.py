"""qNEHVI over a discrete candidate set with only the error modelled (BoTorch), shared by
`mobo` and `lamoo`'s inner sampler.

Latency (and energy) are known for free from the problem's latency source, so they are not
modelled: a candidate's tensor is its one-hot encoding (d columns) followed by its known
objectives (k columns, normalised, to be minimised). A SingleTaskGP looks only at the
encoding (its kernel's active dimensions) and models -error; qLogNoisyExpectedHypervolume-
Improvement sees that GP alone, and its MC objective appends -known objectives read off the
extra columns (so BoTorch caches the baseline's Cholesky factor). The baseline is the first
non-dominated layers of the observed feasible points. The batch is chosen greedily over the
candidates (q sequential picks, earlier ones pending; greedy_picks). Each GP fit
starts from the priors' modes, or with `warm` from the previous fit's hyperparameters.

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
    fit_iters: int  # L-BFGS iterations of the marginal-likelihood fit (from the previous fit's hyperparameters)
    kernel: str = "rbf"  # rbf: RBF on the one-hot columns; categorical: exp(-weighted count of differing choices)
    screen: int = 0  # > 0: the greedy picks after the first choose among the top `screen` by single-point qLogNEHVI
    layers: int = 1  # non-dominated layers of the observed feasible points taken as the baseline
    warm: bool = True  # each fit starts from the previous fit's hyperparameters


def error_reference(evals: list[Evaluation], n_first: int) -> float:
    """The error coordinate of the reference point: the median error of the first `n_first`
    feasible evaluations (the random initial design, an unbiased look at the space), as the
    scorer ignores what is worse than the space's median."""
    errs = [ev.error for ev in evals if ev.feasible][: max(n_first, 1)]
    return float(np.median(errs)) if errs else 100.0


def _known_objective(d: int, k: int):
    """The MC objective: the GP's samples of -error, then -known objectives read off the
    input's last k columns. Why not a deterministic model beside the GP: with the GP as the
    only model qLogNEHVI caches the baseline's Cholesky factor (cache_root) and each
    candidate costs a low-rank update instead of a joint posterior of baseline + candidate."""
    from botorch.acquisition.multi_objective.objective import MCMultiOutputObjective

    class KnownColumns(MCMultiOutputObjective):
        def forward(self, samples: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
            known = -X[..., d:d + k]  # batch x q x k
            return torch.cat([samples, known.expand(*samples.shape[:-1], k)], dim=-1)

    return KnownColumns()


def baseline_rows(err: np.ndarray, K: np.ndarray, base: np.ndarray, layers: int = 1) -> np.ndarray:
    """Indices of the rows qLogNEHVI integrates over as the observed front: the first `layers`
    non-dominated layers of the feasible rows on (error, known objectives). The error is
    observed (NAS-Bench accuracies, nearly noiseless), so a feasible row behind three layers has
    practically no chance of being on the front; BoTorch's own pruning draws 2048 posterior
    samples at every baseline row to find the same rows."""
    from hwnas.pareto import nd_ranks

    rows = np.nonzero(base)[0]
    if len(rows) == 0:
        return rows
    r = nd_ranks(np.hstack([err[rows, None], K[rows]]))
    return rows[r < layers]


class OneHotCategoricalKernel:
    """k(x, y) = exp(-sum_p [x_p != y_p] / l_p) over the positions p of a one-hot encoding (one
    lengthscale per position, not per one-hot column): the categorical (Hamming) kernel of
    BoTorch's CategoricalKernel, computed on the one-hot columns as one matrix product
    (a mismatch at p is 1 - <x_p, y_p>). Built by `make`, as gpytorch loads lazily."""

    @staticmethod
    def make(cards: Sequence[int], d: int):
        from math import log, sqrt

        from gpytorch.constraints import GreaterThan
        from gpytorch.kernels import Kernel
        from gpytorch.priors import LogNormalPrior

        blocks = torch.repeat_interleave(torch.arange(len(cards)), torch.tensor(list(cards)))

        class _Kernel(Kernel):
            has_lengthscale = True

            def __init__(self, **kw):
                super().__init__(**kw)
                # One lengthscale per position, D one-hot inputs: gpytorch would check the inputs
                # against ard_num_dims (P); the lengthscale already has its P entries.
                self.ard_num_dims = None

            def forward(self, x1, x2, diag=False, last_dim_is_batch=False, **params):
                inv = 1.0 / self.lengthscale  # ... x 1 x P
                w = inv[..., blocks]  # ... x 1 x D
                total = inv.sum(-1, keepdim=True)  # ... x 1 x 1
                if diag:
                    return torch.exp(-(total.squeeze(-1) - (x1 * x2 * w).sum(-1)))
                return torch.exp(-(total - (x1 * w) @ x2.transpose(-1, -2)))

        # The dimension-scaled prior BoTorch gives its default kernel, over positions here.
        prior = LogNormalPrior(loc=sqrt(2) + 0.5 * log(len(cards)), scale=sqrt(3))
        return _Kernel(ard_num_dims=len(cards), active_dims=list(range(d)), lengthscale_prior=prior,
                       lengthscale_constraint=GreaterThan(2.5e-2, transform=None, initial_value=prior.mode))


@dataclass
class Fitted:
    """The GP's hyperparameters after a fit: the next fit starts from them (warm start)."""
    state: dict


def fit_gp(X: np.ndarray, err: np.ndarray, K: np.ndarray, fit_iters: int, warm: Fitted | None,
           cards: Sequence[int] | None = None):
    """A SingleTaskGP of -error on the one-hot columns of [X | K], hyperparameters fitted by
    L-BFGS from `warm`'s (or the priors' modes). `cards` (the positions' cardinalities): the
    categorical kernel; None: BoTorch's default RBF. Call inside a seeded fork_rng."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.utils.gpytorch_modules import (
        get_covar_module_with_dim_scaled_prior,
    )
    from gpytorch.mlls import ExactMarginalLogLikelihood

    d = X.shape[1]
    dt = torch.float64
    train_X = torch.tensor(np.hstack([X, K]), dtype=dt)
    # Error spread is what the GP models; a constant column (one sample) is jittered by Standardize.
    train_Y = torch.tensor(-err[:, None], dtype=dt)
    if cards is not None:
        covar = OneHotCategoricalKernel.make(cards, d)
    else:
        covar = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, active_dims=list(range(d)))
    gp = SingleTaskGP(train_X, train_Y, covar_module=covar)
    if warm is not None:  # not the outcome transform: its mean and scale are this data's
        for name, mod in (("covar", gp.covar_module), ("lik", gp.likelihood), ("mean", gp.mean_module)):
            mod.load_state_dict(warm.state[name])
    mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
    fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": fit_iters}})
    gp.eval()
    state = {name: {k: v.detach().clone() for k, v in mod.state_dict().items()}
             for name, mod in (("covar", gp.covar_module), ("lik", gp.likelihood), ("mean", gp.mean_module))}
    return gp, Fitted(state)


def propose(X: np.ndarray, err: np.ndarray, K: np.ndarray, base: np.ndarray, Xc: np.ndarray, Kc: np.ndarray,
            err_ref: float, s: QNEHVISettings, seed: int, warm: Fitted | None = None,
            stage=None, cards: Sequence[int] | None = None) -> tuple[list[int], Fitted]:
    """Indices into the candidates of the q picked by qLogNEHVI, best first, and the fitted
    hyperparameters (the next call's warm start).

    X: n x d encodings of the evaluated architectures, err: (n,), K: n x k their known
    objectives (normalised, minimised, reference 1); base: (n,) bool, the rows whose
    objectives make the observed front (the feasible ones; all rows train the GP). Xc: c x d,
    Kc: c x k candidates. `stage(text)`, when given, is told what runs now (progress). `cards`:
    the one-hot blocks' sizes (needed by `s.kernel == "categorical"`).
    Deterministic for `seed` and `warm` (torch's global RNG is forked, the sampler seeded).
    """
    from botorch.acquisition.multi_objective.logei import (
        qLogNoisyExpectedHypervolumeImprovement,
    )
    from botorch.sampling import SobolQMCNormalSampler

    q = min(s.q, len(Xc))
    d, k = X.shape[1], K.shape[1]
    dt = torch.float64
    with torch.random.fork_rng(), warnings.catch_warnings():
        # Routine on a few one-hot points (jitter added, a fit stopped at maxiter): not the user's concern.
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        if stage:
            stage(f"GP fit ({len(X)} points)")
        gp, fitted = fit_gp(X, err, K, s.fit_iters, warm if s.warm else None, cards if s.kernel == "categorical" else None)
        if stage:
            stage(f"qLogNEHVI over {len(Xc)} candidates")
        sampler = SobolQMCNormalSampler(torch.Size([s.mc_samples]), seed=seed)
        # max_iep stays 0: each earlier pick of a batch is folded into the baseline front under every
        # MC sample (a re-partitioning, the bulk of the compute with three objectives). By
        # inclusion-exclusion (max_iep = q - 1) it was cheaper, but the pending picks' samples
        # then depend on each candidate's base samples, and that noise swamped the candidates'
        # differences: lamoo on cifar100 x pi5_onnx fell from 0.98 to 0.64 hv_ratio (30% budget).
        ref = torch.tensor([-err_ref] + [-1.0] * k, dtype=dt)
        train_X = gp.train_inputs[0]
        keep = torch.as_tensor(baseline_rows(err, K, base, s.layers))
        acq = qLogNoisyExpectedHypervolumeImprovement(gp, ref_point=ref, X_baseline=train_X[keep], sampler=sampler,
                                                      objective=_known_objective(d, k), prune_baseline=False)
        choices = torch.tensor(np.hstack([Xc, Kc]), dtype=dt)
        out = greedy_picks(acq, choices, q, s.screen)
    return out, fitted


def greedy_picks(acq, choices: torch.Tensor, q: int, screen: int) -> list[int]:
    """Sequential greedy batch (as optimize_acqf_discrete): each pick maximises qLogNEHVI with
    the earlier picks pending. The first pick's pass scores every candidate on its own; the
    later picks choose among the best `screen` of that pass (0: among all). Why not
    optimize_acqf_discrete: it scores every candidate q times and, on leaving, resets the
    pending points, which re-partitions the baseline front under every MC sample once more.
    The pending points are left set on `acq` (it is not reused).
    Ties go to the lower index (deterministic)."""
    def score(C: torch.Tensor) -> np.ndarray:  # one candidate per t-batch, in chunks
        return torch.cat([acq(c.unsqueeze(-2)) for c in C.split(2048)]).numpy()

    with torch.no_grad():
        vals = score(choices)
        picks = [int(np.argmax(vals))]
        pool = np.arange(len(choices))
        if 0 < screen < len(choices):
            pool = np.sort(np.argsort(-vals, kind="stable")[:max(screen, q)])
        for _ in range(1, q):
            acq.set_X_pending(choices[picks])
            free = pool[~np.isin(pool, picks)]
            picks.append(int(free[np.argmax(score(choices[torch.as_tensor(free)]))]))
    return picks


def one_hot(space, archs: Sequence[Arch]) -> np.ndarray:
    return np.stack([space.encode(a, "onehot") for a in archs]).astype(np.float64)


class QNEHVIPicker:
    """Picks k of a candidate list by qLogNEHVI given the evaluations so far (one GP fit per
    call; warm-started from the previous call's hyperparameters with `settings.warm`, replayed
    on resume, so the same run).

    Shows one progress bar of the fits when `progress`, its text saying what runs now.
    """

    def __init__(self, problem: SearchProblem, known: KnownObjectives, settings: QNEHVISettings, seed: int,
                 n_init: int, progress: bool = False, label: str = "mobo"):
        self.problem, self.known, self.settings = problem, known, settings
        self.seed, self.n_init = int(seed), int(n_init)
        self.progress, self.label = progress, label
        self._bar = None
        self._warm: Fitted | None = None
        self._known_cache: dict[Arch, np.ndarray] = {}

    def known_of(self, archs: Sequence[Arch]) -> np.ndarray:
        """Known objectives of `archs`, each computed once (the candidate sets overlap from call to call)."""
        new = [a for a in dict.fromkeys(archs) if a not in self._known_cache]
        if new:
            for a, row in zip(new, self.known(new)):
                self._known_cache[a] = row
        return np.stack([self._known_cache[a] for a in archs]) if archs else np.zeros((0, self.known.k))

    def pick(self, evals: list[Evaluation], X: np.ndarray, cands: list[Arch], k: int,
             Xc: np.ndarray | None = None) -> list[Arch]:
        """k of `cands` (all of them when there are no more); X: one-hot rows of `evals`, Xc of `cands`."""
        if len(cands) <= k or not evals:
            return list(cands[:k])
        archs = [ev.arch for ev in evals]
        err = np.array([ev.error for ev in evals], dtype=np.float64)
        base = np.array([ev.feasible for ev in evals], dtype=bool)
        if not base.any():
            return list(cands[:k])  # no front yet: the candidates are already a seeded uniform draw
        if self.progress and self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(desc=f"{self.label}: GP fit + qLogNEHVI", unit="fit", leave=False)
        stage = self._bar.set_postfix_str if self._bar is not None else None
        if Xc is None:
            Xc = one_hot(self.problem.space, cands)
        # Seeded by the run's seed and how much it has seen: the same on a replayed (resumed) run.
        step_seed = (self.seed * 1_000_003 + len(evals)) % (2**31 - 1)
        picks, self._warm = propose(X, err, self.known_of(archs), base, Xc, self.known_of(cands),
                                    error_reference(evals, self.n_init), replace(self.settings, q=k), step_seed,
                                    warm=self._warm, stage=stage,
                                    cards=self.problem.space.cardinalities())
        if self._bar is not None:
            self._bar.update(1)
        return [cands[i] for i in picks]
