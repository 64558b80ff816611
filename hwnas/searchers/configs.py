"""Typed configs of the searchers (`searcher.<key>=...`), torch-free.

Hydra needs every searcher's schema before it composes a config, and the apps start without
importing torch or the searchers themselves (hwnas/searchers/__init__.py imports a searcher's
module on first use). A searcher module re-exports its config from here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hwnas.searchers.options import bounded, choice

# The objectives the generative and partitioning searchers optimise (`searcher.objective`).
OBJECTIVES = ("pareto", "accuracy")


@dataclass
class AGNetConfig:
    name: str = "agnet"
    n_init: int = bounded(20, min=1)  # random feasible architectures queried before the first iteration
    batch_size: int = bounded(10, min=1)  # queries per iteration (the paper uses 16 on larger budgets)
    latent: int = bounded(8, min=1)
    hidden: int = bounded(64, min=1)
    lr: float = bounded(3e-3, min=0, min_open=True)
    pretrain_samples: int = bounded(2000, min=1)  # unlabelled architectures (no queries) for the VAE
    pretrain_steps: int = bounded(300, min=0)  # 0 (like finetune_steps, guide_steps): skip that stage
    finetune_steps: int = bounded(30, min=0)  # weighted-retraining steps per iteration
    weight_k: float = bounded(0.05, min=0, min_open=True)  # w = 1 / (k N + rank): smaller k, more weight on the best
    guide_steps: int = bounded(10, min=0)  # surrogate-gradient steps per iteration
    guide_samples: int = bounded(128, min=1)
    guide_weight: float = bounded(0.5, min=0)  # scale of the surrogate loss against the retraining loss
    tau: float = bounded(1.0, min=0, min_open=True)  # Gumbel-softmax temperature
    n_candidates: int = bounded(512, min=1)  # generated per iteration
    candidate_tries: int = bounded(4, min=1)  # more sampling rounds when too few candidates are new and feasible
    acq_candidates: int = bounded(128, min=1)  # candidates scored by EHVI (the optimistic Pareto-best of them)
    ehvi_samples: int = bounded(32, min=1)
    surrogate_members: int = bounded(5, min=1)
    surrogate_hidden: int = bounded(64, min=1)
    surrogate_steps: int = bounded(150, min=1)
    objective: str = choice("pareto", *OBJECTIVES)  # pareto: as above; accuracy: error-rank weights, no latency pull, EI batch


@dataclass
class GANASConfig:
    name: str = "ganas"
    n_init: int = bounded(20, min=1)  # random feasible architectures queried before the first iteration
    batch_size: int = bounded(10, min=1)  # queries per iteration
    top_k: int = bounded(10, min=1)  # size of the "real" set (10 beat 20 and 5 on NB-201 in a 5-seed check)
    hidden: int = bounded(32, min=1)  # GRU and MLP width
    lr: float = bounded(5e-3, min=0, min_open=True)
    d_steps: int = bounded(20, min=1)  # discriminator updates per iteration
    g_rounds: int = bounded(3, min=0)  # generator rounds per iteration (0: untrained, an ablation): sample from the old policy, then PPO epochs
    g_samples: int = bounded(128, min=2)  # sampled per round (>= 2: the advantage is standardised by their std)
    ppo_epochs: int = bounded(4, min=0)
    clip: float = bounded(0.2, min=0, max=1, min_open=True, max_open=True)  # PPO ratio clip
    entropy_coef: float = bounded(0.01, min=0)  # keeps the policy from collapsing on a few architectures
    infeasible_reward: float = -1.0  # reward of a generated architecture over budget or degenerate
    n_candidates: int = bounded(256, min=1)  # generated per iteration to pick the batch from
    candidate_tries: int = bounded(4, min=1)  # more sampling rounds when too few candidates are new and feasible
    rank_by_discriminator: bool = True  # batch = most "real"-looking samples; False: in sampling order
    objective: str = choice("pareto", *OBJECTIVES)  # pareto: top-k by non-dominated rank + crowding; accuracy: by error alone


@dataclass
class LaNASConfig:
    name: str = "lanas"
    depth: int = bounded(4, min=0)  # tree height: up to 2**depth leaves
    min_split: int = bounded(8, min=2)  # a node splits only with at least this many samples (and both children >= 2)
    cp: float = bounded(0.5, min=0)  # UCB exploration constant (utilities are in [0, 1])
    n_init: int = bounded(10, min=1)  # random feasible samples before the first tree
    relearn_every: int = bounded(1, min=1)  # queries between two tree fits (every query: measured best, ~ms each)
    batch_size: int = bounded(1, min=1)  # architectures per ask (one MCTS selection)
    objective: str = choice("pareto", *OBJECTIVES)  # pareto: non-dominated rank on (error, latency[, energy]); accuracy: error only
    l2: float = bounded(1.0, min=0, min_open=True)  # L2 penalty; 0: one-hot columns make Newton's system singular
    surrogate: bool = False  # rank in-region candidates by a JointSurrogate (EHVI / EI) instead of uniform
    surrogate_every: int = bounded(5, min=1)  # queries between two surrogate fits
    n_candidates: int = bounded(200, min=1)  # in-region candidates scored by the surrogate (or rejection-sampled per try)
    sample_tries: int = bounded(20, min=1)  # rejection-sampling rounds in a non-tabular space before backing off to the parent


@dataclass
class MetaD2AConfig:
    name: str = "metad2a"
    batch_size: int = bounded(5, min=1)  # evaluated per iteration: the predictor's best few
    n_generate: int = bounded(200, min=1)  # generated per latency-cap level per iteration
    cap_levels: int = bounded(6, min=1)  # caps swept: quantiles of the feasible latencies (the last: the budget)
    temperature: float = bounded(1.0, min=0, min_open=True)  # of the generator's sampling (doubled on a retry)
    candidate_tries: int = bounded(3, min=1)  # sampling rounds when too few candidates are new and feasible
    ehvi_samples: int = bounded(32, min=1)
    local: bool = True  # also rank every one-edit neighbour of the observed front
    correction: float = bounded(10.0, min=0, min_open=True)  # prior precision of the target's own one-hot correction
    objective: str = choice("pareto", *OBJECTIVES)  # pareto: EHVI batch along the front; accuracy: best predicted
    # Meta-training (hwnas/meta/metad2a.py, D2ASettings); together with the data, the sources and
    # meta_seed they key the cached model (hwnas-meta train-generator builds the same one).
    meta_hidden: int = bounded(64, min=1)
    meta_steps: int = bounded(600, min=1)
    meta_episodes: int = bounded(8, min=1)
    meta_context_max: int = bounded(64, min=0)
    meta_query_size: int = bounded(128, min=1)
    meta_targets: int = bounded(16, min=1)
    meta_top_fraction: float = bounded(0.01, min=0, max=1, min_open=True)
    meta_lr: float = bounded(2e-3, min=0, min_open=True)
    meta_seed: int = bounded(0, min=0)
    # Benchmark tasks / devices never learnt from, besides the target's own (always excluded).
    exclude_tasks: list = field(default_factory=list)
    exclude_devices: list = field(default_factory=list)


@dataclass
class MOBOConfig:
    name: str = "mobo"
    n_init: int = bounded(10, min=1)  # random feasible architectures queried before the first GP
    batch_size: int = bounded(5, min=1)  # q: architectures per GP fit, picked greedily by qLogNEHVI
    n_candidates: int = bounded(600, min=1)  # unseen feasible candidates scored per fit (seeded draw)
    local: bool = True  # also score every one-edit neighbour of the observed front
    mc_samples: int = bounded(16, min=1)  # quasi-MC samples of the posterior in qLogNEHVI
    fit_iters: int = bounded(30, min=1)  # L-BFGS iterations of the GP's marginal-likelihood fit
    n_screen: int = bounded(0, min=0)  # greedy picks after the first among the top n_screen by one-point qLogNEHVI; 0: all (docs/searchers.md: 32 cost quality under a budget)
    kernel: str = choice("rbf", "rbf", "categorical")  # the GP's kernel on the one-hot encoding (categorical: Hamming)
    baseline_layers: int = bounded(1, min=1)  # non-dominated layers of the observed feasible points that make qLogNEHVI's baseline front
    warm_start: bool = False  # each GP fit starts from the previous fit's hyperparameters (false: from the priors' modes; docs/searchers.md)


@dataclass
class LaMOOConfig:
    name: str = "lamoo"
    depth: int = bounded(3, min=0)  # tree height: up to 2**depth leaves
    min_split: int = bounded(10, min=2)  # a node splits only with at least this many samples (both children >= 2)
    cp: float = bounded(0.1, min=0)  # UCB exploration constant (node values are hypervolumes in [0, 1])
    n_init: int = bounded(10, min=1)  # random feasible samples before the first tree
    relearn_every: int = bounded(1, min=1)  # queries between two tree fits
    batch_size: int = bounded(5, min=1)  # architectures per ask (one MCTS selection; q of qLogNEHVI)
    l2: float = bounded(1.0, min=0, min_open=True)  # L2 penalty of the linear split (as lanas)
    inner: str = choice("qnehvi", "qnehvi", "random")  # who proposes inside the chosen leaf
    n_candidates: int = bounded(600, min=1)  # in-leaf candidates scored by qLogNEHVI (or rejection-sampled per try)
    sample_tries: int = bounded(20, min=1)  # rejection-sampling rounds in a non-tabular space before backing off
    mc_samples: int = bounded(16, min=1)
    fit_iters: int = bounded(30, min=1)
    n_screen: int = bounded(0, min=0)  # as mobo's
    kernel: str = choice("rbf", "rbf", "categorical")  # as mobo's
    baseline_layers: int = bounded(1, min=1)  # as mobo's
    warm_start: bool = False  # as mobo's


@dataclass
class NSGA2Config:
    name: str = "nsga2"
    pop_size: int = bounded(20, min=1)
    crossover_prob: float = bounded(0.9, min=0, max=1)
    crossover_eta: float = bounded(15.0, min=0)
    mutation_eta: float = bounded(20.0, min=0)
    max_empty_generations: int = bounded(200, min=1)  # generations without one feasible member before giving up


@dataclass
class NSGA3Config(NSGA2Config):
    name: str = "nsga3"
    n_partitions: int = bounded(12, min=1)  # Das-Dennis reference directions (2 objectives: 13 directions)


DASH_LAMBDAS = (0.0, 1.0, 4.0)  # the default sweep: accuracy only, then two latency pulls


@dataclass
class DashConfig:
    """searcher=dash: one supernet search per lambda (ask), its argmax network retrained by the evaluator."""
    name: str = "dash"
    lambdas: list[float] = field(default_factory=lambda: list(DASH_LAMBDAS))  # latency penalty per search, in order
    latency_unit: str = choice("relative", "relative", "ms")  # relative: E[latency] / (slowest - fastest network); ms: in ms
    budget_weight: float = bounded(10.0, min=0)  # under a latency budget: + weight * max(0, E[latency] - budget); 0: off
    epochs: int = bounded(10, min=1)  # supernet epochs per lambda (the architecture moves once per batch)
    warmup_epochs: int = bounded(0, min=0, max="epochs", max_open=True)  # first epochs train the weights only
    batch_size: int = bounded(64, min=2)
    lr: float = bounded(3e-3, min=0, min_open=True)  # weights (AdamW, cosine decay)
    arch_lr: float = bounded(0.1, min=0, min_open=True)  # architecture logits (Adam): a short search needs a large step
    weight_decay: float = bounded(5e-4, min=0)
    train_subset: int = bounded(1000, min=0)  # supernet trains on the first N of the evaluator's training data; 0: all of it
    mixture: str = choice("fourier", "fourier", "naive")  # fourier: DASH's FFT mixture; naive: one conv per candidate (same result, slower)
    threads: int = bounded(0, min=0)  # torch threads while the supernet trains; 0: leave as is


@dataclass
class RandomConfig:
    name: str = "random"
    batch_size: int = bounded(1, min=1)


@dataclass
class RegularizedEvolutionConfig:
    name: str = "regularized_evolution"
    population_size: int = bounded(20, min=1)
    sample_size: int = bounded(5, min=1, max="population_size")
    objective: str = choice("sweep", "sweep", "constrained")  # sweep: random latency cap per tournament; constrained: accuracy under the budget
    mutation_tries: int = bounded(50, min=0)  # re-mutate while the child is infeasible or already seen
