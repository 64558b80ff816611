"""A deep ensemble of small MLPs: a cheap accuracy predictor with an uncertainty estimate.

Members differ by seeded initialisation and by a bootstrap resample of the training set
(drawn as per-point multinomial weights, so every member trains full-batch on the same
tensor). The members are stacked into batched weight tensors and trained together with one
Adam optimiser: one `bmm` per layer, which keeps fitting 200 points well under a second on
one CPU core. Randomness comes only from a local `torch.Generator` seeded by `seed`.

Shapes: `X` is n x d (any float features, e.g. ``space.encode(arch, "onehot")``), `y` is n.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from hwnas.seeding import torch_generator


class EnsembleSurrogate:
    """Ensemble of `n_members` MLPs (d -> hidden -> hidden -> 1, ReLU) on standardised X and y.

    `predict` gives the ensemble mean and standard deviation in the units of y; the standard
    deviation has a small floor (`min_std` of y's scale) so acquisition functions never see 0.
    """

    def __init__(self, n_members: int = 5, hidden: int = 64, n_layers: int = 2, steps: int = 200,
                 lr: float = 1e-2, weight_decay: float = 1e-4, bootstrap: bool = True,
                 min_std: float = 1e-3, seed: int = 0):
        if n_members < 1 or hidden < 1 or n_layers < 1 or steps < 1:
            raise ValueError("n_members, hidden, n_layers and steps must be >= 1")
        self.n_members, self.hidden, self.n_layers = int(n_members), int(hidden), int(n_layers)
        self.steps, self.lr, self.weight_decay = int(steps), float(lr), float(weight_decay)
        self.bootstrap, self.min_std, self.seed = bool(bootstrap), float(min_std), int(seed)
        self._params: list[torch.Tensor] | None = None

    # --- fitting ------------------------------------------------------------------------
    def _init_params(self, d: int, gen: torch.Generator) -> list[torch.Tensor]:
        M, H = self.n_members, self.hidden
        dims = [d] + [H] * self.n_layers + [1]
        params = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)  # torch.nn.Linear's default init range
            W = (torch.rand(M, fan_in, fan_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(M, 1, fan_out, generator=gen) * 2 - 1) * bound
            params += [W.requires_grad_(), b.requires_grad_()]
        return params

    def fit(self, X: np.ndarray, y: np.ndarray) -> "EnsembleSurrogate":
        """Fit on X (n x d) and targets y (n,); returns self."""
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.ndim != 2 or len(X) != len(y) or len(y) < 1:
            raise ValueError(f"fit needs X n x d and y n with n >= 1, got {X.shape} and {y.shape}")
        if not (np.isfinite(X).all() and np.isfinite(y).all()):
            raise ValueError("fit got non-finite values in X or y")
        n, d = X.shape
        self.x_mean = X.mean(axis=0)
        self.x_std = np.where(X.std(axis=0) > 1e-8, X.std(axis=0), 1.0).astype(np.float32)
        self.y_mean = float(y.mean())
        self.y_std = float(y.std()) if y.std() > 1e-12 else 1.0

        # Same seed and data -> same fit, whatever was fitted before (replay-safe).
        gen = torch_generator(self.seed)
        Xt = torch.from_numpy((X - self.x_mean) / self.x_std)
        yt = torch.from_numpy(((y - self.y_mean) / self.y_std).astype(np.float32))
        if self.bootstrap and n > 1:
            # Bootstrap as multinomial counts: member m sees point i w[m, i] times.
            idx = torch.randint(n, (self.n_members, n), generator=gen)
            w = torch.zeros(self.n_members, n).scatter_add_(1, idx, torch.ones(self.n_members, n))
        else:
            w = torch.ones(self.n_members, n)
        w = w / w.sum(dim=1, keepdim=True)
        params = self._init_params(d, gen)
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        Xb = Xt.unsqueeze(0).expand(self.n_members, n, d)
        for _ in range(self.steps):
            opt.zero_grad()
            pred = self._forward(Xb, params)  # M x n
            loss = (w * (pred - yt) ** 2).sum()
            loss.backward()
            opt.step()
        self._params = [p.detach() for p in params]
        return self

    @staticmethod
    def _forward(Xb: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        h = Xb
        for k in range(0, len(params) - 2, 2):
            h = torch.relu(torch.baddbmm(params[k + 1], h, params[k]))
        return torch.baddbmm(params[-1], h, params[-2]).squeeze(-1)

    # --- prediction -----------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self._params is not None

    def predict_torch(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable (w.r.t. X) mean and std, both shape n, in y's units.

        X: n x d tensor (any float dtype; computed in float32). Gradients flow into X only.
        """
        if self._params is None:
            raise RuntimeError("EnsembleSurrogate.predict before fit")
        X = X.to(torch.float32)
        Xs = (X - torch.from_numpy(self.x_mean)) / torch.from_numpy(self.x_std)
        Xb = Xs.unsqueeze(0).expand(self.n_members, *Xs.shape)
        preds = self._forward(Xb, self._params) * self.y_std + self.y_mean  # M x n
        mean = preds.mean(dim=0)
        var = preds.var(dim=0, unbiased=False) if self.n_members > 1 else torch.zeros_like(mean)
        std = torch.sqrt(var + (self.min_std * self.y_std) ** 2)
        return mean, std

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (each n,) for X (n x d), as float64 numpy arrays."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        with torch.no_grad():
            mean, std = self.predict_torch(torch.from_numpy(X))
        return mean.numpy().astype(np.float64), std.numpy().astype(np.float64)
