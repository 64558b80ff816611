"""LaNAS (Wang et al. 2019, arXiv 1906.06832): learn a partition of the space, search it by MCTS.

A binary tree of depth <= `depth` is learned from the evaluated samples: each node fits a
linear classifier (L2-regularised logistic regression on the architecture encoding) that
separates the better half of its samples from the worse half, and routes samples (and the
space) to a "good" and a "bad" child by the classifier's prediction. A leaf is a region of
the space cut out by the chain of linear constraints on its path. Each ask, MCTS walks from
the root picking the child with the larger UCB (mean utility of its samples + exploration
term with constant `cp`) and samples new architectures inside the chosen leaf's region:
from the feasible pool of a tabular space (masking every unseen pool member by the path's
constraints), else by rejection sampling from the space. Optionally a surrogate ranks the
region's candidates. The tree is relearned every `relearn_every` queries; in between, new
samples are routed through the existing classifiers so node statistics stay current.

Hardware-aware, multi-objective (`objective: pareto`): a sample's utility is its
non-dominated rank on (error, latency[, energy]) among feasible samples, error clipped at the
median evaluated error. Why ranks and not a swept scalarisation: the tree must partition the
space consistently between relearns, and a per-iteration weight would change what "good"
means at every step; ranks keep the whole front "good" at once, so the good leaves cover the
trade-off. Why clipped: the front is scored against the median error (the README's
"Scoring a front", under Job 2), so a fast but poor cell adds nothing; clipping makes such
cells rank by latency behind every better one instead of sitting on the first front.
Infeasible samples get utility 0 (always bad). `objective: accuracy` is plain LaNAS on the
error of feasible samples.

Deterministic: a function of the seed and the told evaluations only (numpy Generator, the
surrogate seeded from the seed and the number of evaluations, ties broken by order).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from hwnas.pareto import nd_ranks
from hwnas.problem import Evaluation
from hwnas.searchers.base import Searcher, register_searcher
from hwnas.searchers.configs import LaNASConfig
from hwnas.spaces.base import Arch


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 25) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (deterministic, no RNG).

    X: n x d, y: (n,) in {0, 1}. Returns (w (d,), b) so that P(y=1|x) = sigmoid(x @ w + b).
    The bias is not penalised.
    """
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, float(l2))
    reg[-1] = 1e-8
    for _ in range(iters):
        z = np.clip(A @ theta, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        grad = A.T @ (p - y) + reg * theta
        H = (A * (p * (1 - p))[:, None]).T @ A + np.diag(reg)
        step = np.linalg.solve(H, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta[:-1], float(theta[-1])


@dataclass
class _Node:
    depth: int
    w: Optional[np.ndarray] = None  # None for a leaf
    b: float = 0.0
    good: Optional["_Node"] = None
    bad: Optional["_Node"] = None
    n: int = 0  # samples routed here
    value: float = 0.0  # their mean utility
    members: list[int] = field(default_factory=list)

    @property
    def leaf(self) -> bool:
        return self.w is None

    def route(self, X: np.ndarray) -> np.ndarray:
        """True where the classifier sends a row of X to the good child."""
        return X @ self.w + self.b > 0


@register_searcher("lanas", LaNASConfig)
class LaNAS(Searcher):
    steady_state = True

    def __init__(self, problem, config: LaNASConfig, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        self.evals: list[Evaluation] = []
        self.X = np.zeros((0, int(sum(self.space.cardinalities()))))  # one-hot width
        self.seen: set[Arch] = set()  # asked (told or not): never asked again
        self._told: set[Arch] = set()
        self.root: _Node | None = None
        self._built_at = -1
        pool = problem.feasible_pool()
        self.pool = pool
        if pool is not None:
            self.pool_X = self._encode(pool)
            self.pool_pos = {a: i for i, a in enumerate(pool)}
            self.pool_free = np.ones(len(pool), dtype=bool)
        self._init_chooser()

    # --- hooks a variant of the tree overrides (LaMOO: hwnas/searchers/lamoo.py) ----------------
    def _init_chooser(self) -> None:
        """Set up what picks among a region's candidates (_choose)."""
        self._surrogate = None
        self._surrogate_at = -1
        if self.config.surrogate:
            from hwnas.surrogates.joint import JointSurrogate

            self._surrogate = JointSurrogate(self.problem, seed=self.seed)

    def _n_wanted(self, k: int) -> int:
        """In-region candidates to gather for k picks."""
        return self.config.n_candidates if self.config.surrogate else k

    def _prepare_scores(self) -> None:
        """Per-sample scores the node hooks read, from every evaluation so far."""
        self._u = self.utilities()
        self._err = np.array([ev.error for ev in self.evals])

    def _node_value(self, idx: np.ndarray) -> float:
        """A node's value in UCB: the mean utility of its samples."""
        return float(self._u[idx].mean()) if len(idx) else 0.0

    def _good_labels(self, idx: np.ndarray) -> np.ndarray | None:
        """1 for the better half of a node's samples by utility (ties: error, then query order);
        None when there is nothing to separate."""
        u, err = self._u, self._err
        if np.all(u[idx] == u[idx][0]):
            return None
        order = np.lexsort((idx, err[idx], -u[idx]))
        labels = np.zeros(len(idx))
        labels[order[: len(idx) // 2]] = 1.0
        return labels

    def _encode(self, archs) -> np.ndarray:
        return np.stack([self.space.encode(a, "onehot") for a in archs]).astype(np.float64)

    # --- protocol -------------------------------------------------------------------------
    def ask(self) -> list[Arch]:
        out: list[Arch] = []
        n_feasible = sum(ev.feasible for ev in self.evals)
        if n_feasible < self.config.n_init:
            for _ in range(self.config.batch_size):
                out.append(self._take(self.sample_feasible(self.seen)))
            return out
        if self.root is None or len(self.evals) - self._built_at >= self.config.relearn_every:
            self._build()
        else:
            self._update_stats()
        path = self._select()
        for arch in self._sample_in(path, self.config.batch_size):
            out.append(self._take(arch))
        return out

    def tell(self, evaluations: list[Evaluation]) -> None:
        for ev in evaluations:
            if ev.arch in self._told:
                continue
            self._told.add(ev.arch)
            self.evals.append(ev)
            self.X = np.vstack([self.X, self._encode([ev.arch])])

    def _take(self, arch: Arch) -> Arch:
        self.seen.add(arch)
        if self.pool is not None and arch in self.pool_pos:
            self.pool_free[self.pool_pos[arch]] = False
        return arch

    # --- utilities and the tree ----------------------------------------------------------
    def utilities(self) -> np.ndarray:
        """Utility in [0, 1] of each evaluated sample (higher = better; infeasible = 0)."""
        u = np.zeros(len(self.evals))
        feas = np.array([ev.feasible for ev in self.evals], dtype=bool)
        if not feas.any():
            return u
        F = np.array([ev.objectives() for ev in self.evals], dtype=float)[feas]
        if self.config.objective == "accuracy":
            order = np.argsort(F[:, 0], kind="stable")
            ranks = np.empty(len(F))
            ranks[order] = np.arange(len(F))
            # ties share the best rank of their group
            _, first = np.unique(F[order, 0], return_index=True)
            tie_rank = np.zeros(len(F))
            for s, e in zip(first, list(first[1:]) + [len(F)]):
                tie_rank[order[s:e]] = s
            u[feas] = 1.0 - tie_rank / len(F)
        else:
            F[:, 0] = np.minimum(F[:, 0], np.median(F[:, 0]))
            r = nd_ranks(F).astype(float)
            u[feas] = 1.0 - r / (r.max() + 1.0)
        return u

    def _build(self) -> None:
        """Relearn the partition from every evaluated sample."""
        self._prepare_scores()
        self.root = self._grow(np.arange(len(self.evals)), 0)
        self._built_at = len(self.evals)

    def _grow(self, idx: np.ndarray, depth: int) -> _Node:
        node = _Node(depth=depth, n=len(idx), value=self._node_value(idx), members=list(idx))
        if depth >= self.config.depth or len(idx) < self.config.min_split:
            return node
        labels = self._good_labels(idx)
        if labels is None:
            return node  # nothing to separate
        X = self.X[idx]
        mu, sd = X.mean(axis=0), X.std(axis=0)
        sd = np.where(sd > 1e-9, sd, 1.0)
        w, b = fit_logistic((X - mu) / sd, labels, self.config.l2)
        # Fold the standardisation into the hyperplane so it applies to raw encodings.
        w_raw = w / sd
        b_raw = b - float(mu @ w_raw)
        go = X @ w_raw + b_raw > 0
        if go.sum() < 2 or (~go).sum() < 2:
            return node  # the hyperplane does not separate: keep it a leaf
        node.w, node.b = w_raw, b_raw
        node.good = self._grow(idx[go], depth + 1)
        node.bad = self._grow(idx[~go], depth + 1)
        return node

    def _update_stats(self) -> None:
        """Route every sample through the current tree and refresh counts and values."""
        self._prepare_scores()

        def visit(node: _Node, idx: np.ndarray) -> None:
            node.n, node.members = len(idx), list(idx)
            node.value = self._node_value(idx)
            if not node.leaf:
                go = node.route(self.X[idx]) if len(idx) else np.zeros(0, dtype=bool)
                visit(node.good, idx[go])
                visit(node.bad, idx[~go])

        visit(self.root, np.arange(len(self.evals)))

    def _select(self) -> list[tuple[_Node, bool]]:
        """MCTS descent by UCB; the path as (node, went_good) pairs, leaf last as (leaf, None)."""
        path: list[tuple[_Node, bool]] = []
        node = self.root
        while not node.leaf:
            ucb = []
            for child in (node.good, node.bad):
                if child.n == 0:
                    ucb.append(np.inf)
                else:
                    ucb.append(child.value + 2 * self.config.cp * np.sqrt(2 * np.log(max(node.n, 1)) / child.n))
            go_good = ucb[0] >= ucb[1]  # ties go to the good side
            path.append((node, go_good))
            node = node.good if go_good else node.bad
        path.append((node, None))
        return path

    @staticmethod
    def _in_region(path, X: np.ndarray, upto: int) -> np.ndarray:
        ok = np.ones(len(X), dtype=bool)
        for node, go_good in path[:upto]:
            ok &= node.route(X) == go_good
        return ok

    # --- sampling inside a region ------------------------------------------------------
    def _sample_in(self, path, k: int) -> list[Arch]:
        """k unseen feasible archs inside the deepest region of `path` that has any."""
        for upto in range(len(path) - 1, -1, -1):  # back off toward the root when exhausted
            cands = self._candidates(path, upto, k)
            if cands:
                return self._choose(cands, k)
        return [self.sample_feasible(self.seen)]

    def _candidates(self, path, upto: int, k: int) -> list[Arch]:
        c = self.config
        want = max(self._n_wanted(k), k)
        if self.pool is not None:
            free = np.nonzero(self.pool_free)[0]
            inside = free[self._in_region(path, self.pool_X[free], upto)]
            if len(inside) > want:
                inside = np.sort(self.rng.choice(inside, size=want, replace=False))
            return [self.pool[i] for i in inside]
        # Rejection sampling under the path's linear constraints (space not enumerable).
        got: list[Arch] = []
        taken: set[Arch] = set()
        for _ in range(c.sample_tries):
            batch = [self.space.sample(self.rng) for _ in range(max(want, 64))]
            batch = [a for a in batch if a not in self.seen and a not in taken]
            if not batch:
                continue
            ok = self._in_region(path, self._encode(batch), upto) & self.problem.worth_querying(batch)
            for a, good in zip(batch, ok):
                if good and a not in taken:
                    taken.add(a)
                    got.append(a)
            if len(got) >= want:
                break
        return got[:want]

    def _choose(self, cands: list[Arch], k: int) -> list[Arch]:
        if self._surrogate is None or len(cands) <= k:
            return cands[:k]  # already a uniform draw from the region
        kind = "ehvi" if self.config.objective == "pareto" else "ei"
        if self._surrogate_at < 0 or len(self.evals) - self._surrogate_at >= self.config.surrogate_every:
            self._surrogate.fit(self.evals)  # the ensemble fit dominates LaNAS's cost: not every query
            self._surrogate_at = len(self.evals)
        rng = np.random.default_rng([self.seed, len(self.evals), 7])
        score = self._surrogate.score(cands, self.evals, kind=kind, rng=rng, fit=False)
        best = np.argsort(-score, kind="stable")[:k]
        return [cands[i] for i in best]
