"""Surrogates: an ensemble accuracy predictor with uncertainty, acquisition functions, and the
joint accuracy-latency surrogate searchers use (latency and energy come from the table)."""
from hwnas.surrogates.acquisition import (  # noqa: F401
                                          expected_improvement,
                                          feasible_score,
                                          hv_improvement,
                                          mask_infeasible,
                                          upper_confidence,
)
from hwnas.surrogates.ensemble import EnsembleSurrogate  # noqa: F401
from hwnas.surrogates.joint import JointSurrogate  # noqa: F401
