"""`runner=remote`: time models on an edge device through the stand-alone agent (profiling/agent.py).

The agent runs onnxruntime on the device; this runner uploads each ONNX file with the timing
settings and reads back the agent's summary. Measurements are serial on the agent's side.
"""
from __future__ import annotations

import os
from pathlib import Path

from hwnas.errors import ConfigError, HwnasError
from hwnas.profiling.agent_client import AgentClient
from hwnas.profiling.runners.base import RUNNERS, Runner, Timing, TimingSettings

TOKEN_ENV = "HWNAS_AGENT_TOKEN"
# Short names the agent also accepts; tables record onnxruntime's own provider names.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider"}


def _number(key: str, value, kind: type, what: str):
    """runner.options.<key> as `kind` (Hydra gives strings for unquoted non-numbers), or a ConfigError."""
    if isinstance(value, bool):
        raise ConfigError(f"runner.options.{key}={value!r} must be {what}")
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"runner.options.{key}={value!r} must be {what}") from None
    if kind is int and isinstance(value, float) and number != value:
        raise ConfigError(f"runner.options.{key}={value!r} must be {what}")
    if kind is float and (number != number or number in (float("inf"), float("-inf"))):
        raise ConfigError(f"runner.options.{key}={value!r} must be {what}")
    return number


@RUNNERS.register("remote")
class RemoteRunner(Runner):
    """Options: url (http://<device>:8765), token (else $HWNAS_AGENT_TOKEN), provider
    (cpu | cuda | tensorrt or an onnxruntime provider name), timeout_s (per request), seed
    (of the random input the agent feeds)."""

    name = "remote"
    reference_clock = False  # the agent times one model at a time, with no reference beside it
    OPTIONS = ("url", "token", "provider", "timeout_s", "seed")

    def __init__(self, settings: TimingSettings, url: str | None = None, token: str | None = None,
                 provider: str = "cpu", timeout_s: float = 300.0, seed: int = 0, **options):
        unknown = sorted(k for k in options if k != "name")
        if unknown:
            raise ConfigError(f"unknown option(s) of runner remote: {', '.join(unknown)}; valid: {', '.join(self.OPTIONS)}")
        if settings.precision != "fp32":
            raise ConfigError(f"runner remote times the ONNX model as exported (fp32); got precision={settings.precision!r}")
        if not url:
            raise ConfigError("runner remote needs the agent's address: runner.options.url=http://<device>:8765 "
                              "(where profiling/agent.py listens)")
        if not isinstance(url, str):
            raise ConfigError(f"runner.options.url={url!r} must be a string such as http://<device>:8765")
        if token is not None and not isinstance(token, str):
            token = str(token)
        if not isinstance(provider, str):
            raise ConfigError(f"runner.options.provider={provider!r} must be cpu, cuda, tensorrt or an "
                              f"onnxruntime provider name")
        timeout_s = _number("timeout_s", timeout_s, float, "a number of seconds > 0")
        if not timeout_s > 0:
            raise ConfigError(f"runner.options.timeout_s={timeout_s:g} must be a number of seconds > 0")
        seed = _number("seed", seed, int, "an integer")
        # Every option is kept, so the runner can be rebuilt as type(r)(settings, **r.options).
        super().__init__(settings, url=url, token=token, provider=provider, timeout_s=timeout_s, seed=seed)
        self.provider = PROVIDERS.get(str(provider).lower(), str(provider))
        self.seed = seed
        self.client = AgentClient(url, token or os.environ.get(TOKEN_ENV, ""), timeout_s)
        self._info: dict | None = None

    def _agent_info(self) -> dict:
        if self._info is None:
            self._info = self.client.info()
        return self._info

    def available(self) -> tuple[bool, str]:
        try:
            self._agent_info()
        except HwnasError as exc:
            return False, str(exc)
        return True, ""

    def fingerprint(self) -> dict:
        # The keys the local ORT runners record, from the agent's description of its device, plus
        # that description whole; not the URL (or token), which may change without changing the
        # measurements.
        agent = self._agent_info()["fingerprint"]
        s = self.settings
        return {"runner": self.name, "runtime": "onnxruntime", "onnxruntime": agent.get("onnxruntime"),
                "provider": self.provider, "processor": agent.get("cpu"), "cpu_governor": agent.get("governor"),
                "intra_op_threads": s.intra_op_threads, "inter_op_threads": s.inter_op_threads,
                "graph_optimization": s.graph_optimization, "execution_mode": "sequential",
                "batch": s.batch, "precision": s.precision, "agent": agent}

    def agent_settings(self, input_shape: tuple[int, ...]) -> dict:
        s = self.settings
        return {"warmup": s.warmup, "repeats": s.repeats, "intra_op_threads": s.intra_op_threads,
                "inter_op_threads": s.inter_op_threads, "graph_optimization": s.graph_optimization,
                "provider": self.provider, "input_shape": [int(d) for d in input_shape], "seed": self.seed}

    def time(self, onnx_path: Path, input_shape: tuple[int, ...]) -> Timing:
        path = Path(onnx_path)
        if not path.is_file():
            raise HwnasError(f"ONNX model {path} does not exist")
        limit = self._agent_info().get("max_upload_bytes")
        size = path.stat().st_size
        if isinstance(limit, int) and size > limit:
            raise HwnasError(f"{path} ({size} bytes) exceeds the agent's upload limit of {limit} bytes; "
                             f"restart the agent with a larger --max-upload-mb")
        answer = self.client.time(path, self.agent_settings(input_shape))
        try:
            timing = Timing.from_dict(answer["timing"])
        except (KeyError, TypeError) as exc:
            raise HwnasError(f"agent at {self.client.url} answered without a complete timing ({exc!r}); "
                             f"update profiling/agent.py on the device") from None
        return timing
