"""benchmarks/validation_size.py: how far n validation architectures pin a table's tau down."""
import numpy as np

from benchmarks.validation_size import calibrated_draws, draws_for


def test_more_validation_architectures_pin_tau_down_and_the_interval_covers_the_truth():
    rng = np.random.default_rng(0)
    n = 600
    S = rng.uniform(0.3, 1.5, n)
    K = rng.integers(0, 60, (n, 3)).astype(float)
    y = (1.1 * S + K @ [0.002, 0.001, 0.0] + 0.05) * np.exp(rng.normal(0, 0.03, n))
    fits = calibrated_draws(S, K, y, 20, 60, 0)
    small, large = draws_for(fits, y, 20, 20), draws_for(fits, y, 20, 100)
    assert small.shape == large.shape == (60, 5)
    assert small[:, 0].std() > 1.5 * large[:, 0].std()  # the validation's tau spreads less with more
    assert (small[:, 3] - small[:, 2]).mean() > (large[:, 3] - large[:, 2]).mean()  # and its interval narrows
    for r in (small, large):
        cover = np.mean((r[:, 2] <= r[:, 4]) & (r[:, 4] <= r[:, 3]))
        assert cover > 0.8  # a 95% interval holds the tau on the rest in most draws
    np.testing.assert_array_equal(small, draws_for(calibrated_draws(S, K, y, 20, 60, 0), y, 20, 20))  # same seed, same draws
