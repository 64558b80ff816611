#!/usr/bin/env python3
"""hwnas edge agent: time ONNX models on this device for a remote hwnas (`runner=remote`).

Stand-alone on purpose: it needs Python >= 3.9, numpy and onnxruntime, nothing else (no torch,
no hwnas), so it runs on a Raspberry Pi or a Jetson as a single file. See profiling/README.md.

    python3 agent.py --host 0.0.0.0 --port 8765 --token "$(openssl rand -hex 16)"

Protocol (every request needs `Authorization: Bearer <token>`):
  GET  /info  -> {"fingerprint": {...}, "max_upload_bytes": N, "settings_keys": [...]}
  POST /time  -> body: the ONNX model bytes; header `X-Hwnas-Settings`: a JSON object
                 (warmup, repeats, intra_op_threads, inter_op_threads, graph_optimization,
                 provider, input_shape, spinning, seed). Answer: {"timing": {...}, ...}
Errors answer {"error": "<message>"} with 400 (bad settings), 401 (token), 404, 411, 413
(upload too large) or 422 (the model cannot be loaded or run); never a traceback.
"""
from __future__ import annotations

import argparse
import hmac
import json
import os
import platform
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import onnxruntime as ort

AGENT_VERSION = "1"
SETTINGS_HEADER = "X-Hwnas-Settings"
DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD = 64 * 1024 * 1024
DRAIN_SECONDS = 2.0  # how long a refused upload is read and discarded so the client sees the answer
MAX_MESSAGE = 600  # characters of an onnxruntime error passed back to the client

GRAPH_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}
# name -> (type, default, lowest, highest); ranges keep one request from holding the device for hours.
SETTINGS_SPEC = {
    "warmup": (int, 10, 0, 10_000),
    "repeats": (int, 50, 1, 100_000),
    "intra_op_threads": (int, 1, 0, 1024),  # 0 = onnxruntime's default (all cores)
    "inter_op_threads": (int, 1, 0, 1024),
    "seed": (int, 0, 0, 2**32 - 1),
}


class RequestError(Exception):
    """A request the agent refuses: HTTP status + a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# --- the device ----------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace").strip("\x00 \n\t") or None
    except OSError:
        return None


def _cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    # x86 says "model name"; ARM boards say "Model" (Pi) or only "Hardware"/"CPU part".
    for key in ("model name", "Model", "Hardware", "Processor"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def fingerprint() -> dict:
    """What a measurement on this device depends on (recorded in the latency table)."""
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return {
        "agent_version": AGENT_VERSION,
        "runtime": "onnxruntime",
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "providers": ort.get_available_providers(),
        "cpu": _cpu_model(),
        "board": _read("/proc/device-tree/model"),  # Raspberry Pi / Jetson model string
        "jetson_release": _read("/etc/nv_tegra_release"),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        # Frequency scaling moves latencies by tens of percent: record it ("performance" is best).
        "governor": governor,
        "hostname": platform.node(),
    }


# --- settings ------------------------------------------------------------------------------
def parse_settings(raw: str | None) -> dict:
    """Validate the JSON settings header; RequestError(400) says which value is wrong."""
    if raw is None or not raw.strip():
        data = {}
    else:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RequestError(400, f"header {SETTINGS_HEADER} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError(400, f"header {SETTINGS_HEADER} must be a JSON object")
    known = set(SETTINGS_SPEC) | {"graph_optimization", "provider", "input_shape", "spinning"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RequestError(400, f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    out = {}
    for key, (typ, default, lo, hi) in SETTINGS_SPEC.items():
        val = data.get(key, default)
        if isinstance(val, bool) or not isinstance(val, typ):
            raise RequestError(400, f"setting {key} must be an integer, got {val!r}")
        if not lo <= val <= hi:
            raise RequestError(400, f"setting {key} must be in {lo}..{hi}, got {val}")
        out[key] = val
    level = data.get("graph_optimization", "all")
    if level not in GRAPH_LEVELS:
        raise RequestError(400, f"setting graph_optimization must be one of {', '.join(GRAPH_LEVELS)}, got {level!r}")
    out["graph_optimization"] = level
    spinning = data.get("spinning", True)
    if not isinstance(spinning, bool):
        raise RequestError(400, f"setting spinning must be true or false, got {spinning!r}")
    out["spinning"] = spinning
    provider = data.get("provider", "cpu")
    if not isinstance(provider, str):
        raise RequestError(400, f"setting provider must be a string, got {provider!r}")
    provider = PROVIDER_ALIASES.get(provider.lower(), provider)
    available = ort.get_available_providers()
    if provider not in available:
        raise RequestError(400, f"provider {provider!r} is not available on this agent; available: {', '.join(available)}")
    out["provider"] = provider
    shape = data.get("input_shape")
    if shape is not None:
        if (not isinstance(shape, list) or not 1 <= len(shape) <= 8
                or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 1 << 20 for d in shape)):
            raise RequestError(400, f"setting input_shape must be a list of 1..8 positive integers, got {shape!r}")
        if int(np.prod(shape)) > 1 << 28:
            raise RequestError(400, f"setting input_shape {shape} is too large an input")
    out["input_shape"] = shape
    return out


# --- timing --------------------------------------------------------------------------------
def summarize(samples_ms: np.ndarray) -> dict:
    """The fields of hwnas.profiling.runners.base.Timing, computed the same way."""
    t = np.asarray(samples_ms, dtype=float)
    p10, p25, p50, p75, p90, p99 = np.percentile(t, [10, 25, 50, 75, 90, 99])
    iqr = p75 - p25
    outliers = int(np.sum((t > p75 + 1.5 * iqr) | (t < p25 - 1.5 * iqr)))
    return {"median_ms": float(p50), "iqr_ms": float(iqr), "p10_ms": float(p10), "p90_ms": float(p90),
            "p99_ms": float(p99), "mean_ms": float(t.mean()), "min_ms": float(t.min()), "n": int(t.size),
            "outliers": outliers}


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def _session(model: bytes, s: dict) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = GRAPH_LEVELS[s["graph_optimization"]]
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = s["intra_op_threads"]
    opts.inter_op_num_threads = s["inter_op_threads"]
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if s["spinning"] else "0")
    opts.log_severity_level = 3  # onnxruntime's warnings would flood the agent's log
    providers = [s["provider"]] + (["CPUExecutionProvider"] if s["provider"] != "CPUExecutionProvider" else [])
    try:
        sess = ort.InferenceSession(model, sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises several unrelated types for a bad model
        raise RequestError(422, f"onnxruntime cannot load the model: {_short(exc)}") from None
    if sess.get_providers()[0] != s["provider"]:
        raise RequestError(422, f"onnxruntime did not create provider {s['provider']} for this model "
                                f"(got {', '.join(sess.get_providers())})")
    return sess


def _feed(sess: ort.InferenceSession, s: dict) -> dict:
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise RequestError(422, f"the model has {len(inputs)} inputs; the agent times single-input models")
    inp = inputs[0]
    if inp.type != "tensor(float)":
        raise RequestError(422, f"the model's input {inp.name!r} is {inp.type}; the agent feeds float32 tensors")
    shape = s["input_shape"]
    if shape is None:
        if not all(isinstance(d, int) and d > 0 for d in inp.shape):
            raise RequestError(400, f"the model's input {inp.name!r} has shape {inp.shape}: "
                                    f"send setting input_shape (batch included)")
        shape = list(inp.shape)
    elif len(shape) != len(inp.shape) or any(isinstance(d, int) and d != v for d, v in zip(inp.shape, shape)):
        raise RequestError(422, f"input_shape {shape} does not fit the model's input {inp.name!r} of shape {inp.shape}")
    rng = np.random.default_rng(s["seed"])
    return {inp.name: rng.standard_normal(shape).astype(np.float32)}


def _runner(sess: ort.InferenceSession, feed: dict, provider: str):
    """A function running the model once, synchronously."""
    if provider == "CPUExecutionProvider":
        return lambda: sess.run(None, feed)
    # GPU providers: the input and outputs stay on the device (IO binding), so host-device
    # copies are not timed; waiting for the outputs makes each run's time the GPU's time.
    binding = sess.io_binding()
    name, value = next(iter(feed.items()))
    binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
    for out in sess.get_outputs():
        binding.bind_output(out.name, "cuda")

    def run():
        sess.run_with_iobinding(binding)
        binding.synchronize_outputs()
    return run


def time_model(model: bytes, s: dict) -> dict:
    """Warm-up runs, then `repeats` runs timed one by one with perf_counter (ms)."""
    sess = _session(model, s)
    feed = _feed(sess, s)
    try:
        run = _runner(sess, feed, s["provider"])
        for _ in range(s["warmup"]):
            run()
        times = np.empty(s["repeats"])
        for i in range(s["repeats"]):
            t0 = time.perf_counter()
            run()
            times[i] = (time.perf_counter() - t0) * 1e3
    except Exception as exc:
        raise RequestError(422, f"onnxruntime failed to run the model: {_short(exc)}") from None
    return {"timing": summarize(times), "settings": {**s, "input_shape": list(feed[next(iter(feed))].shape)},
            "providers": sess.get_providers()}


# --- HTTP ----------------------------------------------------------------------------------
class AgentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, token: str, max_upload: int = DEFAULT_MAX_UPLOAD, quiet: bool = False):
        super().__init__(address, AgentHandler)
        self.token = token.encode()
        self.max_upload = max_upload
        self.quiet = quiet
        # One measurement at a time: two models timed at once would slow each other down.
        self.timing_lock = threading.Lock()


class AgentHandler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "hwnas-agent/" + AGENT_VERSION
    protocol_version = "HTTP/1.1"
    timeout = 120  # seconds a connection may stall mid-request (a half-sent body) before it is dropped

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {fmt % args}\n")

    def _reply(self, status: int, obj: dict, close: bool = False) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        got = self.headers.get("Authorization", "")
        scheme, _, token = got.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.server.token)

    def _handle(self, fn) -> None:
        length = self.headers.get("Content-Length", "")
        self._unread = int(length) if length.isdigit() else 0
        try:
            fn()
        except RequestError as exc:
            # Close after any refusal: an unread request body must not be taken for the next request.
            self._reply(exc.status, {"error": exc.message}, close=True)
            self._drain()
        except Exception as exc:  # the client gets a message, the agent's log the details
            self.log_message("internal error: %r", exc)
            self._reply(500, {"error": f"agent internal error: {_short(exc)}"}, close=True)
            self._drain()

    def _drain(self) -> None:
        """After refusing a request whose body was not read: stop sending, then discard what the
        client is still sending for a moment. Closing a socket with unread data resets the
        connection, and the client could lose the answer that says why."""
        if self._unread <= 0:
            return
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(DRAIN_SECONDS)
            deadline = time.monotonic() + DRAIN_SECONDS
            left = self._unread
            while left > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _get(self) -> None:
        if not self._authorised():
            raise RequestError(401, "missing or wrong token (send 'Authorization: Bearer <token>')")
        if self.path.rstrip("/") != "/info":
            raise RequestError(404, f"no such endpoint GET {self.path}; endpoints: GET /info, POST /time")
        # Read afresh each time: the governor may be changed after the agent started.
        self._reply(200, {"fingerprint": fingerprint(), "max_upload_bytes": self.server.max_upload,
                          "settings_keys": sorted(list(SETTINGS_SPEC) + ["graph_optimization", "provider",
                                                                          "input_shape", "spinning"])})

    def _post(self) -> None:
        # Check the token and the size before reading the body, so a stranger cannot make the
        # agent read or store anything.
        if not self._authorised():
            raise RequestError(401, "missing or wrong token (send 'Authorization: Bearer <token>')")
        if self.path.rstrip("/") != "/time":
            raise RequestError(404, f"no such endpoint POST {self.path}; endpoints: GET /info, POST /time")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RequestError(411, "send the model as the request body with a Content-Length header")
        length = int(length)
        if length > self.server.max_upload:
            raise RequestError(413, f"model of {length} bytes exceeds the agent's upload limit of "
                                    f"{self.server.max_upload} bytes (start the agent with a larger --max-upload-mb)")
        if length == 0:
            raise RequestError(400, "empty request body: send the ONNX model's bytes")
        settings = parse_settings(self.headers.get(SETTINGS_HEADER))
        model = self.rfile.read(length)
        self._unread = 0
        if len(model) != length:
            raise RequestError(400, f"request body ended after {len(model)} of {length} bytes")
        with self.server.timing_lock:
            start = time.monotonic()
            result = time_model(model, settings)
            # The agent's monotonic clock while this request held the device (shows serial use).
            result["held_s"] = [start, time.monotonic()]
        self._reply(200, result)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="hwnas edge agent: time ONNX models for a remote hwnas.")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 to serve the LAN)")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0 = any free port)")
    ap.add_argument("--token", default=None, help="shared secret (default: $HWNAS_AGENT_TOKEN)")
    ap.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD / 2**20, help="largest model accepted")
    ap.add_argument("--quiet", action="store_true", help="do not log requests")
    args = ap.parse_args(argv)
    token = args.token if args.token is not None else os.environ.get("HWNAS_AGENT_TOKEN", "")
    if not token.strip():
        print("hwnas agent: error: no token; pass --token <secret> or set HWNAS_AGENT_TOKEN "
              "(the agent runs models sent to it and never starts unauthenticated)", file=sys.stderr)
        return 2
    if args.max_upload_mb <= 0:
        print("hwnas agent: error: --max-upload-mb must be > 0", file=sys.stderr)
        return 2
    try:
        server = AgentServer((args.host, args.port), token.strip(), int(args.max_upload_mb * 2**20), args.quiet)
    except OSError as exc:
        print(f"hwnas agent: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    # The first stdout line is what scripts (and the tests) parse to find the port.
    print(f"hwnas agent listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
