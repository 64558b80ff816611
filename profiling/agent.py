#!/usr/bin/env python3
"""hwnas edge agent: time ONNX models on this device for a remote hwnas (`runner=remote`).

Stand-alone on purpose: it needs Python >= 3.9, numpy and onnxruntime, nothing else (no torch,
no hwnas), so it runs on a Raspberry Pi or a Jetson as a single file. See profiling/README.md.

    python3 agent.py --host 0.0.0.0 --port 8765 --token "$(openssl rand -hex 16)"

The token must be at least 16 characters. Protocol (every request needs
`Authorization: Bearer <token>`, checked before anything else of the request):
  GET  /info  -> {"fingerprint": {...}, "max_upload_bytes": N, "time_limit_s": T, "settings_keys": [...]}
  POST /time  -> body: the ONNX model bytes; header `X-Hwnas-Settings`: a JSON object
                 (warmup, repeats, intra_op_threads, inter_op_threads, graph_optimization,
                 provider, input_shape, spinning, seed). Answer: {"timing": {...}, ...}
A model that references external data (a file on this device) is refused before onnxruntime
sees it. Each measurement runs in a child process that is killed when it exceeds the time limit
(--time-limit-s), so one model cannot hold the device forever.
Errors answer {"error": "<message>"} with 400 (bad request or settings), 401 (token), 404, 405,
408 (time limit), 411, 413 (upload too large) or 422 (the model is refused, cannot be loaded or
run); never a traceback.
"""
from __future__ import annotations

import argparse
import hmac
import json
import multiprocessing
import os
import platform
import re
import signal
import socket
import stat
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
MIN_TOKEN = 16  # characters: a short token can be guessed
DEFAULT_TIME_LIMIT = 120.0  # seconds one measurement (load + warm-up + timed runs) may hold the device
MAX_TIME_LIMIT = 86400.0
MAX_UPLOAD_MB = 16384
MAX_SETTINGS_HEADER = 4096  # characters of the X-Hwnas-Settings header
REQUEST_QUEUE = 128  # listen backlog: connections waiting to be accepted (socketserver's default is 5)
KILL_GRACE = 2.0  # seconds a child timing process gets to exit after SIGTERM before SIGKILL
CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() accepts '²'

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
# Asked once, at import: handler threads must not call into onnxruntime while a timing child
# may be forking (a lock held by another thread at fork time stays locked in the child).
PROVIDERS = tuple(ort.get_available_providers())
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
        "providers": list(PROVIDERS),
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
    elif len(raw) > MAX_SETTINGS_HEADER:
        raise RequestError(400, f"header {SETTINGS_HEADER} is {len(raw)} characters long; "
                                f"the agent accepts at most {MAX_SETTINGS_HEADER}")
    else:
        try:
            data = json.loads(raw)
        except RecursionError:
            raise RequestError(400, f"header {SETTINGS_HEADER} is nested too deeply") from None
        except ValueError as exc:
            raise RequestError(400, f"header {SETTINGS_HEADER} is not valid JSON: {_short(exc)}") from None
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
    if provider not in PROVIDERS:
        raise RequestError(400, f"provider {provider!r} is not available on this agent; available: {', '.join(PROVIDERS)}")
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


# --- the model pre-check -------------------------------------------------------------------
# A TensorProto may say "my data is in a file" (data_location = EXTERNAL, external_data entries
# with a location such as ../../etc/passwd). onnxruntime would then read a file of this device
# (and older versions echoed its bytes in an error), so the agent refuses any such model before
# onnxruntime sees it. No `onnx` dependency: a minimal protobuf wire-format walker over the
# messages that can hold a tensor (field numbers of onnx.proto3).
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _FUNCTION, _TRAINING = range(8)
_CHILDREN = {  # message kind -> {field number: kind of the (length-delimited) message in it}
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},  # graph, training_info, functions
    _TRAINING: {1: _GRAPH, 2: _GRAPH},  # initialization, algorithm
    _FUNCTION: {7: _NODE, 11: _ATTRIBUTE},  # node, attribute_proto (default values)
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},  # node, initializer, sparse_initializer
    _NODE: {5: _ATTRIBUTE},  # attribute
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},  # values, indices
    _TENSOR: {},
}
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_NODE_OP_TYPE = 4
# com.microsoft EPContext nodes (embed_mode=0) name a compiled-engine file in ep_cache_context
# that TensorRT / OpenVINO / QNN providers then read from this device: refused like external data.
_REFUSED_OPS = {b"EPContext"}


class _Malformed(ValueError):
    pass


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed(pos)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes, start: int, end: int):
    """(field number, wire type, value) of one message's fields; a length-delimited value is
    its (start, end) in `buf`. _Malformed if the bytes are not a protobuf message."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise _Malformed(pos)
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1 or wire == 5:
            value, pos = None, pos + (8 if wire == 1 else 4)
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            value, pos = (pos, pos + size), pos + size
        else:  # groups (3, 4) are not used by ONNX; 6 and 7 do not exist
            raise _Malformed(pos)
        if pos > end:
            raise _Malformed(end)
        yield field, wire, value


def check_model_bytes(model: bytes) -> None:
    """RequestError(422) unless `model` parses as a protobuf message in which no tensor (in the
    graph, its subgraphs of If/Loop/Scan, node attributes, sparse tensors, functions, training
    info) references external data and no node is an EPContext node."""
    buf = bytes(model)
    stack = [(_MODEL, 0, len(buf))]
    try:
        while stack:
            kind, start, end = stack.pop()
            children = _CHILDREN[kind]
            for field, wire, value in _fields(buf, start, end):
                if kind == _TENSOR:
                    if field == _TENSOR_EXTERNAL_DATA or (
                            field == _TENSOR_DATA_LOCATION and (wire != 0 or value != 0)):
                        raise RequestError(422, "the model refers to external data (a tensor stored in a "
                                                "separate file); the agent only times self-contained models: "
                                                "export with the weights inside the .onnx file")
                elif (kind == _NODE and field == _NODE_OP_TYPE and wire == 2
                      and buf[value[0]:value[1]] in _REFUSED_OPS):
                    raise RequestError(422, "the model contains an EPContext node (a precompiled execution-"
                                            "provider engine that may name a file on this device); the agent "
                                            "only times plain ONNX graphs: export without EP context caching")
                elif wire == 2 and field in children:
                    stack.append((children[field], *value))
    except _Malformed as exc:
        raise RequestError(422, f"the upload is not an ONNX model: the protobuf does not parse "
                                f"(at byte {exc.args[0]} of {len(buf)})") from None


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
    # Only the ONNX protobuf format, which check_model_bytes has vetted (not the ORT flatbuffer format).
    opts.add_session_config_entry("session.load_model_format", "ONNX")
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
    """Warm-up runs, then `repeats` runs timed one by one with perf_counter (ms), in this process
    and without a time limit (the agent calls it through measure())."""
    check_model_bytes(model)
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


# --- the child process that times one model -------------------------------------------------
def _context():
    # fork: the child starts at once with numpy and onnxruntime already imported (the agent
    # never creates an onnxruntime session itself, so there is no runtime state to inherit);
    # spawn where fork is unsafe (macOS) or missing (Windows).
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods and sys.platform != "darwin" else "spawn")


def _close_inherited_sockets(keep: int) -> None:
    """Close every socket this forked child inherited from the agent: the listening one (the port
    must not outlive the agent) and every client's connection (a client the agent hung up on must
    see EOF now, not when this child ends). Only sockets: multiprocessing's own pipes (the result
    pipe, the exit sentinel) and stdio stay open."""
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    try:
        fds = [int(name) for name in os.listdir(fd_dir)]
    except (OSError, ValueError):
        fds = range(3, 1024)  # no fd listing: the usual select() range
    for fd in fds:
        if fd == keep:
            continue
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:  # the listing's own descriptor, already closed
            pass


def _child(conn, model: bytes, s: dict, close_sockets: bool) -> None:
    """Body of the child process: time the model, send ("ok", result) or ("error", status, message)."""
    try:
        if close_sockets:
            _close_inherited_sockets(keep=conn.fileno())
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the agent, which stops the child
        if sys.platform.startswith("linux"):  # die with the agent, even if it is killed
            try:
                import ctypes
                ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            except Exception:
                pass
        result = ("ok", time_model(model, s))
    except RequestError as exc:
        result = ("error", exc.status, exc.message)
    except BaseException as exc:  # noqa: BLE001 - reported to the client, the child then exits
        result = ("error", 500, f"agent internal error while timing: {_short(exc)}")
    try:
        conn.send(result)
        conn.close()
    finally:
        os._exit(0)  # no interpreter shutdown: nothing the fork inherited is flushed or joined


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _pb(field: int, value) -> bytes:
    """One protobuf field: an int (varint) or bytes / str (length-delimited)."""
    if isinstance(value, int):
        return _pb_varint(field << 3) + _pb_varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _pb_varint(field << 3 | 2) + _pb_varint(len(data)) + data


def _warmup_model() -> bytes:
    """y = Relu(Conv(x, w)), x, w and y float [1, 1, 1, 1]: ModelProto bytes written by hand."""
    shape = _pb(2, b"".join(_pb(1, _pb(1, 1)) for _ in range(4)))  # TensorShapeProto [1, 1, 1, 1]

    def value_info(name: str) -> bytes:  # a float tensor of that shape
        return _pb(1, name) + _pb(2, _pb(1, _pb(1, 1) + shape))

    weight = b"".join(_pb(1, 1) for _ in range(4)) + _pb(2, 1) + _pb(8, "w") + _pb(9, b"\x00\x00\x80\x3f")
    nodes = (_pb(1, _pb(1, "x") + _pb(1, "w") + _pb(2, "c") + _pb(4, "Conv"))
             + _pb(1, _pb(1, "c") + _pb(2, "y") + _pb(4, "Relu")))
    graph = nodes + _pb(2, "warmup") + _pb(5, weight) + _pb(11, value_info("x")) + _pb(12, value_info("y"))
    return _pb(1, 8) + _pb(8, _pb(1, "") + _pb(2, 17)) + _pb(7, graph)


def warm_up() -> None:
    """Load and run a tiny model once in the agent's own process (CPU, one thread: no thread pool
    is left behind), so that onnxruntime's one-time initialisation is inherited by every forked
    timing process instead of being paid by each (a few hundred ms on a PC, more on a Pi). Not on
    a GPU: CUDA must not be initialised before a fork."""
    try:
        time_model(_warmup_model(), parse_settings('{"warmup": 1, "repeats": 1, "spinning": false}'))
    except Exception:  # only a speed-up: the agent works without it
        pass


def _stop(proc, grace: float = 0.0) -> None:
    """Wait `grace` s for the child process to exit, then terminate it, then kill it; return when
    it is gone."""
    if grace > 0:
        proc.join(grace)
    if proc.is_alive():
        proc.terminate()
        proc.join(KILL_GRACE)
    if proc.is_alive():
        proc.kill()
        proc.join()


def measure(model: bytes, s: dict, time_limit_s: float) -> dict:
    """time_model() in a child process stopped after `time_limit_s`: RequestError(408) then, and
    the device is free again (the child is gone) whatever the model does."""
    check_model_bytes(model)  # refused here, before any child or onnxruntime session exists
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)  # an os.pipe, not a socket: the child keeps it
    # Only a forked child holds the agent's descriptors.
    close_sockets = ctx.get_start_method() == "fork"
    proc = ctx.Process(target=_child, args=(send, model, s, close_sockets), daemon=True,
                       name="hwnas-agent-timing")
    answer = None
    try:
        try:
            proc.start()
        finally:
            send.close()  # the child's end: EOF here once the child is gone
        if not receive.poll(time_limit_s):
            raise RequestError(408, f"the measurement exceeded the agent's time limit of {time_limit_s:g} s "
                                    f"(loading, warm-up and timed runs); it was stopped and the device is free. "
                                    f"Use fewer repeats or a smaller model, or restart the agent with a "
                                    f"larger --time-limit-s")
        try:
            answer = receive.recv()
        except (EOFError, OSError):
            proc.join(KILL_GRACE)  # for its exit code
            raise RequestError(422, f"onnxruntime crashed while loading or running the model "
                                    f"(timing process exit code {proc.exitcode})") from None
    finally:
        receive.close()
        _stop(proc, KILL_GRACE if answer is not None else 0.0)  # a child that answered exits by itself
    if answer[0] == "ok":
        return answer[1]
    raise RequestError(answer[1], answer[2])


# --- HTTP ----------------------------------------------------------------------------------
UNAUTHORISED = "missing or wrong token (send 'Authorization: Bearer <token>')"


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True
    # Clients queued while the agent accepts: with socketserver's 5, a burst of clients at once
    # got connection resets.
    request_queue_size = REQUEST_QUEUE

    def __init__(self, address, token: str, max_upload: int = DEFAULT_MAX_UPLOAD, quiet: bool = False,
                 time_limit_s: float = DEFAULT_TIME_LIMIT):
        if len(token) < MIN_TOKEN:
            raise ValueError(f"the token must be at least {MIN_TOKEN} characters")
        if not 0 < time_limit_s <= MAX_TIME_LIMIT:
            raise ValueError(f"the time limit must be > 0 and at most {MAX_TIME_LIMIT:g} seconds")
        super().__init__(address, AgentHandler)
        self.token = token.encode()
        self.max_upload = max_upload
        self.quiet = quiet
        self.time_limit_s = float(time_limit_s)
        # One measurement at a time: two models timed at once would slow each other down.
        self.timing_lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        # One line in the log, not socketserver's traceback (a client that hung up, mostly).
        exc = sys.exc_info()[1]
        if not self.quiet:
            sys.stderr.write(f"{client_address[0]} - connection error: {exc!r}\n")


class AgentHandler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "hwnas-agent/" + AGENT_VERSION
    protocol_version = "HTTP/1.1"
    timeout = 120  # seconds a connection may stall mid-request (a half-sent body) before it is dropped
    _unread = 0  # bytes of request body announced and not read (discarded after a refusal)

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {fmt % args}\n")

    def _reply(self, status: int, obj: dict, close: bool = False) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close or self._unread:  # an unread body must not be taken for the next request
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code, message=None, explain=None) -> None:
        """http.server's own refusals (malformed request line, headers too long, unknown method):
        JSON like every other answer, not its HTML page."""
        short = self.responses.get(code, ("Error", ""))[0]
        text = message or short
        if explain and explain != text:
            text = f"{text}: {explain}"
        self.log_error("code %d, message %s", code, text)
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # not parsed yet: answer with a status line all the same
            self.request_version = "HTTP/1.0"
        body = json.dumps({"error": text}).encode()
        self.send_response(code, short)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorised(self) -> bool:
        got = self.headers.get("Authorization", "")
        scheme, _, token = got.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.server.token)

    def _content_length(self):
        """The request's body size: None without a Content-Length header, "bad" if it is not one
        byte count in ASCII digits."""
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return None
        if len(values) > 1 or not CONTENT_LENGTH.fullmatch(values[0].strip()):
            return "bad"
        return int(values[0].strip())

    def _handle(self, fn) -> None:
        length = self._content_length()
        self._unread = length if isinstance(length, int) else 0
        try:
            # The token first, whatever else the request holds: a stranger learns nothing more.
            if not self._authorised():
                raise RequestError(401, UNAUTHORISED)
            if length == "bad":
                raise RequestError(400, "malformed Content-Length header: send one byte count in ASCII digits")
            if "Transfer-Encoding" in self.headers:
                raise RequestError(411, "chunked uploads are not supported: send a Content-Length header")
            self._length = length
            fn()
        except RequestError as exc:
            # Close after any refusal: an unread request body must not be taken for the next request.
            self._refuse(exc.status, exc.message)
        except OSError as exc:  # the client hung up; nobody to answer
            self.close_connection = True
            self.log_message("connection error: %r", exc)
        except Exception as exc:  # the client gets a message, the agent's log the details
            self.log_message("internal error: %r", exc)
            self._refuse(500, f"agent internal error: {_short(exc)}")

    def _refuse(self, status: int, message: str) -> None:
        try:
            self._reply(status, {"error": message}, close=True)
            self._drain()
        except OSError:
            self.close_connection = True

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

    def _other(self) -> None:
        raise RequestError(405, f"method {self.command} not allowed; endpoints: GET /info, POST /time")

    def do_HEAD(self) -> None:
        self._handle(self._other)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD

    def _get(self) -> None:
        if self.path.rstrip("/") != "/info":
            raise RequestError(404, f"no such endpoint GET {self.path}; endpoints: GET /info, POST /time")
        # Read afresh each time: the governor may be changed after the agent started.
        self._reply(200, {"fingerprint": fingerprint(), "max_upload_bytes": self.server.max_upload,
                          "time_limit_s": self.server.time_limit_s,
                          "settings_keys": sorted(list(SETTINGS_SPEC) + ["graph_optimization", "provider",
                                                                          "input_shape", "spinning"])})

    def _post(self) -> None:
        # The token (checked by _handle) and the size come before reading the body, so a stranger
        # cannot make the agent read or store anything.
        if self.path.rstrip("/") != "/time":
            raise RequestError(404, f"no such endpoint POST {self.path}; endpoints: GET /info, POST /time")
        length = self._length
        if length is None:
            raise RequestError(411, "send the model as the request body with a Content-Length header")
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
        check_model_bytes(model)  # before waiting for the device
        with self.server.timing_lock:
            start = time.monotonic()
            result = measure(model, settings, self.server.time_limit_s)
            # The agent's monotonic clock while this request held the device (shows serial use).
            result["held_s"] = [start, time.monotonic()]
        self._reply(200, result)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="hwnas edge agent: time ONNX models for a remote hwnas.")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 to serve the LAN)")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0 = any free port)")
    ap.add_argument("--token", default=None,
                    help=f"shared secret of at least {MIN_TOKEN} characters (default: $HWNAS_AGENT_TOKEN)")
    ap.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD / 2**20, help="largest model accepted")
    ap.add_argument("--time-limit-s", type=float, default=DEFAULT_TIME_LIMIT,
                    help=f"longest one measurement (load, warm-up, timed runs) may take before it is stopped "
                         f"and answered 408 (default {DEFAULT_TIME_LIMIT:g})")
    ap.add_argument("--quiet", action="store_true", help="do not log requests")
    args = ap.parse_args(argv)
    token = args.token if args.token is not None else os.environ.get("HWNAS_AGENT_TOKEN", "")
    token = token.strip()
    if not token:
        print("hwnas agent: error: no token; pass --token <secret> or set HWNAS_AGENT_TOKEN "
              "(the agent runs models sent to it and never starts unauthenticated)", file=sys.stderr)
        return 2
    if len(token) < MIN_TOKEN:
        print(f"hwnas agent: error: the token is {len(token)} characters; it must be at least {MIN_TOKEN} "
              f"(make one with: python3 -c \"import secrets; print(secrets.token_hex(16))\")", file=sys.stderr)
        return 2
    if not 0 < args.max_upload_mb <= MAX_UPLOAD_MB:
        print(f"hwnas agent: error: --max-upload-mb must be > 0 and at most {MAX_UPLOAD_MB}", file=sys.stderr)
        return 2
    if not 0 < args.time_limit_s <= MAX_TIME_LIMIT:
        print(f"hwnas agent: error: --time-limit-s must be a number of seconds > 0 and at most {MAX_TIME_LIMIT:g}",
              file=sys.stderr)
        return 2
    try:
        server = AgentServer((args.host, args.port), token, int(args.max_upload_mb * 2**20), args.quiet,
                             args.time_limit_s)
    except OSError as exc:
        print(f"hwnas agent: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    if _context().get_start_method() == "fork":
        warm_up()
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
