"""Typed configs of the searchers (`searcher.<key>=...`), torch-free.

Hydra needs every searcher's schema before it composes a config, and the apps start without
importing torch or the searchers themselves (hwnas/searchers/__init__.py imports a searcher's
module on first use). A searcher module re-exports its config from here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AGNetConfig:
    name: str = "agnet"
    n_init: int = 20  # random feasible architectures queried before the first iteration
    batch_size: int = 10  # queries per iteration (the paper uses 16 on larger budgets)
    latent: int = 8
    hidden: int = 64
    lr: float = 3e-3
    pretrain_samples: int = 2000  # unlabelled architectures (no queries) for the VAE
    pretrain_steps: int = 300
    finetune_steps: int = 30  # weighted-retraining steps per iteration
    weight_k: float = 0.05  # w = 1 / (k N + rank): smaller k, more weight on the best
    guide_steps: int = 10  # surrogate-gradient steps per iteration
    guide_samples: int = 128
    guide_weight: float = 0.5  # scale of the surrogate loss against the retraining loss
    tau: float = 1.0  # Gumbel-softmax temperature
    n_candidates: int = 512  # generated per iteration
    candidate_tries: int = 4  # more sampling rounds when too few candidates are new and feasible
    acq_candidates: int = 128  # candidates scored by EHVI (the optimistic Pareto-best of them)
    ehvi_samples: int = 32
    surrogate_members: int = 5
    surrogate_hidden: int = 64
    surrogate_steps: int = 150
    objective: str = "pareto"  # pareto: as above; accuracy: error-rank weights, no latency pull, EI batch


@dataclass
class GANASConfig:
    name: str = "ganas"
    n_init: int = 20  # random feasible architectures queried before the first iteration
    batch_size: int = 10  # queries per iteration
    top_k: int = 10  # size of the "real" set (10 beat 20 and 5 on NB-201 in a 5-seed check)
    hidden: int = 32  # GRU and MLP width
    lr: float = 5e-3
    d_steps: int = 20  # discriminator updates per iteration
    g_rounds: int = 3  # generator rounds per iteration: sample from the old policy, then PPO epochs
    g_samples: int = 128  # architectures sampled per round
    ppo_epochs: int = 4
    clip: float = 0.2  # PPO ratio clip
    entropy_coef: float = 0.01  # keeps the policy from collapsing on a few architectures
    infeasible_reward: float = -1.0  # reward of a generated architecture over budget or degenerate
    n_candidates: int = 256  # generated per iteration to pick the batch from
    candidate_tries: int = 4  # more sampling rounds when too few candidates are new and feasible
    rank_by_discriminator: bool = True  # batch = most "real"-looking samples; False: in sampling order
    objective: str = "pareto"  # pareto: top-k by non-dominated rank + crowding; accuracy: by error alone


@dataclass
class LaNASConfig:
    name: str = "lanas"
    depth: int = 4  # tree height: up to 2**depth leaves
    min_split: int = 8  # a node splits only with at least this many samples (and both children >= 2)
    cp: float = 0.5  # UCB exploration constant (utilities are in [0, 1])
    n_init: int = 10  # random feasible samples before the first tree
    relearn_every: int = 1  # queries between two tree fits (every query: measured best, ~ms each)
    batch_size: int = 1  # architectures per ask (one MCTS selection)
    objective: str = "pareto"  # pareto: non-dominated rank on (error, latency[, energy]); accuracy: error only
    l2: float = 1.0  # logistic regression's L2 penalty
    surrogate: bool = False  # rank in-region candidates by a JointSurrogate (EHVI / EI) instead of uniform
    surrogate_every: int = 5  # queries between two surrogate fits
    n_candidates: int = 200  # in-region candidates scored by the surrogate (or rejection-sampled per try)
    sample_tries: int = 20  # rejection-sampling rounds in a non-tabular space before backing off to the parent


@dataclass
class NSGA2Config:
    name: str = "nsga2"
    pop_size: int = 20
    crossover_prob: float = 0.9
    crossover_eta: float = 15.0
    mutation_eta: float = 20.0
    max_empty_generations: int = 200  # generations without one feasible member before giving up


@dataclass
class NSGA3Config(NSGA2Config):
    name: str = "nsga3"
    n_partitions: int = 12  # Das-Dennis reference directions (2 objectives: 13 directions)


@dataclass
class RandomConfig:
    name: str = "random"
    batch_size: int = 1


@dataclass
class RegularizedEvolutionConfig:
    name: str = "regularized_evolution"
    population_size: int = 20
    sample_size: int = 5
    objective: str = "sweep"  # sweep: random latency cap per tournament; constrained: accuracy under the budget
    mutation_tries: int = 50  # re-mutate while the child is infeasible or already seen
