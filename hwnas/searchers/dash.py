"""`searcher=dash`: DASH (Shen et al. 2022, papers.md section 5), hardware-aware.

Each ask() runs one supernet search (hwnas/searchers/dash_supernet.py) for the next value of
`searcher.lambdas`: every searchable convolution of the space's backbone becomes a mixture of
all (kernel, dilation) candidates, computed in the Fourier domain
(hwnas/searchers/dash_mixed_conv.py), weights and architecture logits are trained jointly on
the training data with loss = cross-entropy + lambda * expected latency, and the argmax per
layer is the proposed architecture. The evaluator (evaluator=train) then retrains that network
from scratch with its own schedule and measures it like any query, so history, checkpoints,
the front, export and resume work as for every searcher; one run with several lambdas gives a
front, and a Hydra multirun over searcher.lambdas=[x] gives one point per run.

What each supernet search found (per-layer probabilities, expected latency, time) goes to
<run dir>/dash.json; a resumed run reads its searches back from there instead of repeating them
(when the config, seed and data are the same).
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

from hwnas.errors import ConfigError
from hwnas.io import write_json_atomic
from hwnas.problem import Evaluation
from hwnas.searchers.base import Searcher, register_searcher
from hwnas.searchers.configs import DashConfig
from hwnas.spaces.base import Arch

RECORD = "dash.json"


def check_lambdas(lambdas) -> list[float]:
    try:
        values = [float(v) for v in lambdas]
    except (TypeError, ValueError):
        raise ConfigError(f"searcher.lambdas must be a list of numbers >= 0, got {lambdas!r}") from None
    if not values:
        raise ConfigError("searcher.lambdas is empty: give at least one latency weight, e.g. searcher.lambdas=[0,1]")
    bad = [v for v in values if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise ConfigError(f"searcher.lambdas must hold finite numbers >= 0, got {bad[0]!r} in {values}")
    return values


@register_searcher("dash", DashConfig)
class DashSearcher(Searcher):
    def __init__(self, problem, config: DashConfig, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        self.lambdas = check_lambdas(config.lambdas)
        from hwnas.spaces.dash import DashSpace

        if not isinstance(self.space, DashSpace):
            raise ConfigError(f"searcher=dash searches each convolution's kernel and dilation of space=dash; "
                              f"space={self.space.name} has none. Use space=dash")
        self.evaluator = None
        self.run_dir: Path | None = None
        self.results: list[dict] = []  # one per finished supernet search, in lambda order
        self._latency = None  # LatencyModel, computed on first use
        self._data = None

    # --- what the search gives it -----------------------------------------------------------
    def bind_run(self, evaluator, run_dir: Path | None = None) -> None:
        """The evaluator whose training data the supernet trains on (evaluator=train), and the
        run dir where dash.json goes. Called by hwnas.search before the loop."""
        if not getattr(evaluator, "trains", False):
            raise ConfigError("searcher=dash trains a supernet on the task's data: use evaluator=train "
                              f"(got evaluator={type(evaluator).__name__})")
        if evaluator.budget < len(self.lambdas):
            raise ConfigError(f"searcher=dash proposes one network per lambda: budget.queries={evaluator.budget} is less "
                              f"than the {len(self.lambdas)} values of searcher.lambdas; pass "
                              f"budget.queries={len(self.lambdas)}")
        self.space.check_input(int(evaluator.input_shape[1]), f"dataset {evaluator.splits.name}")  # before any work
        self.evaluator = evaluator
        self.run_dir = None if run_dir is None else Path(run_dir)

    @property
    def finished(self) -> str | None:
        """Why the search is over (every lambda searched), else None: the loop stops on it."""
        if len(self.results) >= len(self.lambdas):
            return f"searcher: all {len(self.lambdas)} lambda(s) of searcher.lambdas searched"
        return None

    # --- ask / tell --------------------------------------------------------------------------
    def ask(self) -> list[Arch]:
        if self.finished:
            return []
        if self.evaluator is None:
            raise ConfigError("searcher=dash needs the training data: run it through hwnas-search with evaluator=train")
        lam = self.lambdas[len(self.results)]
        record = self._previous(lam) or self._search(lam)
        self.results.append(record)
        self._write_record()
        return [self.space.from_choices([tuple(c) for c in record["choices"]])]

    def tell(self, evaluations: list[Evaluation]) -> None:
        pass  # each lambda's search is independent of what the others' networks scored

    # --- one supernet search ----------------------------------------------------------------
    def identity(self) -> dict:
        """What decides a supernet search's outcome; dash.json's records are reused only when equal."""
        conf = {k: v for k, v in asdict(self.config).items() if k not in ("lambdas", "threads")}
        return {"config": conf, "seed": self.seed, "data": self.evaluator.data_digest, "space": self.space.name,
                "space_params": self.space.param_values(),
                "device": self.problem.source.name, "input_shape": list(self.evaluator.input_shape)}

    def _previous(self, lam: float) -> dict | None:
        if self.run_dir is None or not (self.run_dir / RECORD).is_file():
            return None
        try:
            old = json.loads((self.run_dir / RECORD).read_text())
        except (OSError, ValueError):
            return None
        if old.get("identity") != json.loads(json.dumps(self.identity())):
            return None
        for r in old.get("searches", []):
            if r.get("lambda") == lam:
                return r
        return None

    def _write_record(self) -> None:
        if self.run_dir is not None:
            write_json_atomic(self.run_dir / RECORD, {"identity": self.identity(), "searches": self.results})

    def latency_model(self):
        from hwnas.searchers.dash_supernet import candidate_latency

        if self._latency is None:
            self._latency = candidate_latency(self.space, self.problem.latency, self.space.n_layers())
        return self._latency

    def training_data(self):
        """The evaluator's (already prepared) training tensors, cut to searcher.train_subset."""
        if self._data is None:
            x, y = self.evaluator.x_train, self.evaluator.y_train
            n = self.config.train_subset
            if n and n < len(x):
                x, y = x[:n], y[:n]  # the evaluator's subset is already a fixed shuffle: its first n
            self._data = (x, y)
        return self._data

    def _search(self, lam: float) -> dict:
        import torch

        from hwnas.searchers.dash_supernet import SupernetSettings, build_supernet, search_supernet
        from hwnas.training.loop import arch_seed

        c = self.config
        settings = SupernetSettings(c.epochs, c.warmup_epochs, c.batch_size, c.lr, c.arch_lr, c.weight_decay,
                                    c.mixture, c.latency_unit, self._budget(), c.budget_weight)
        x, y = self.training_data()
        lat = self.latency_model()
        ev = self.evaluator
        model_fn = lambda: build_supernet(self.space, ev.input_shape, ev.num_classes, c.mixture)  # noqa: E731
        threads = torch.get_num_threads()
        if c.threads:
            torch.set_num_threads(c.threads)
        bar = self._bar(lam, len(x) * c.epochs)
        try:
            # One seed for every lambda: the same initial supernet and batches, only lambda differs.
            res = search_supernet(model_fn, x, y, lat, lam, settings, arch_seed(self.seed, "dash-supernet"),
                                  bar, device=getattr(ev, "device", "cpu"))
        finally:
            if bar is not None:
                bar.close()
            torch.set_num_threads(threads)
        return {"lambda": lam, "choices": [list(ch) for ch in res.choices], "probs": res.probs,
                "expected_latency_ms": res.expected_ms, "chosen_latency_ms": res.chosen_ms,
                "reference_latency_ms": lat.base_ms, "final_loss": res.final_loss,
                "seconds": round(res.seconds, 3), "steps": res.steps, "trace": res.trace}

    def _budget(self) -> float | None:
        b = self.problem.latency_budget
        return float(b) if b is not None and math.isfinite(b) else None

    def _bar(self, lam: float, total: int):
        if not self.progress:
            return None
        from tqdm import tqdm

        bar = tqdm(total=total, unit="img", unit_scale=True, leave=False, dynamic_ncols=True,
                   desc=f"dash supernet lambda={lam:g} ({len(self.results) + 1}/{len(self.lambdas)})", file=sys.stderr)

        def update(epoch: int, loss: float, expected_ms: float, images: int) -> None:
            bar.set_postfix({"epoch": f"{epoch}/{self.config.epochs}", "loss": f"{loss:.3f}",
                             "E[lat]": f"{expected_ms:.3g}ms"}, refresh=False)
            bar.update(images)

        update.close = bar.close  # type: ignore[attr-defined]
        return update
