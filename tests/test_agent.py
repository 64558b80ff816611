"""The edge agent (profiling/agent.py) and its client (runner=remote), over loopback HTTP."""
from __future__ import annotations

import ast
import http.client
import importlib.util
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hwnas.errors import HwnasError
from hwnas.profiling.agent_client import AgentClient
from hwnas.profiling.runners import RUNNERS, TimingSettings

REPO = Path(__file__).resolve().parents[1]
AGENT = REPO / "profiling" / "agent.py"
TOKEN = "test-secret-token-0123456789"  # the agent wants at least 16 characters
LIMIT_MB = 0.1  # ~100 KiB: the test models fit, a padded one does not


def tiny_model_bytes(pad: int = 0) -> bytes:
    """y = relu(x) + 1 on a [1, 4] float input; `pad` bytes of doc string make it larger."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    one = numpy_helper.from_array(np.ones((1, 4), dtype=np.float32), "one")
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "one"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=[one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], doc_string="x" * pad)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def start_agent(*args: str) -> tuple[subprocess.Popen, str]:
    """A quiet agent on a free loopback port: (process, URL)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HWNAS_AGENT_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, str(AGENT), "--host", "127.0.0.1", "--port", "0", "--token", TOKEN, "--quiet", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd="/",
    )
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        pytest.fail(f"agent did not start: {line!r} {proc.stderr.read()}")
    return proc, line.split("listening on", 1)[1].strip()


def stop_agent(proc: subprocess.Popen) -> str:
    """Stop the agent; its stderr, which must hold no traceback (a quiet agent logs nothing else)."""
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def agent():
    proc, url = start_agent("--max-upload-mb", str(LIMIT_MB))
    yield url
    stop_agent(proc)


def load_agent():
    """profiling/agent.py imported in this process (as the dynamic check below does in another)."""
    if "hwnas_agent_under_test" not in sys.modules:
        spec = importlib.util.spec_from_file_location("hwnas_agent_under_test", AGENT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["hwnas_agent_under_test"] = module
    return sys.modules["hwnas_agent_under_test"]


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split(":")
    return host, int(port)


def raw_exchange(url: str, request: bytes) -> tuple[int, dict]:
    """Send raw bytes, read until the agent closes: (status, JSON body)."""
    with socket.create_connection(host_port(url), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), head
    return int(head.split()[1]), json.loads(body)


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_model_bytes())
    return path


def remote(url: str, token: str = TOKEN, **settings):
    return RUNNERS.get("remote")(TimingSettings(**{"warmup": 2, "repeats": 7, **settings}), url=url,
                                 token=token, timeout_s=30, seed=0)


def test_timing_round_trip(agent, model_file):
    runner = remote(agent)
    assert runner.available() == (True, "")
    timing = runner.time(model_file, (1, 4))
    assert timing.n == 7
    assert timing.median_ms > 0 and timing.min_ms <= timing.median_ms <= timing.p99_ms
    assert timing.p10_ms <= timing.median_ms <= timing.p90_ms and timing.iqr_ms >= 0
    assert 0 <= timing.outliers <= 7
    fp = runner.fingerprint()
    assert fp["runner"] == "remote" and fp["provider"] == "CPUExecutionProvider" and fp["intra_op_threads"] == 1
    assert fp["onnxruntime"] and fp["processor"] and "cpu_governor" in fp and TOKEN not in json.dumps(fp)
    agent_fp = fp["agent"]
    assert "CPUExecutionProvider" in agent_fp["providers"] and agent_fp["cores"] >= 1
    for key in ("cpu", "machine", "python", "governor", "board"):
        assert key in agent_fp
    # The profiling app rebuilds runners as type(r)(settings, **r.options) and passes seed=.
    again = type(runner)(runner.settings, **runner.options)
    assert again.time(model_file, (1, 4)).n == 7 and again.seed == 0


def test_times_an_exported_nb201_network(agent, tmp_path):
    # A real (shrunk) NAS-Bench-201 network from hwnas's exporter: dynamic batch dimension.
    import torch

    from hwnas.onnx_io import export_onnx
    from hwnas.spaces.nb201 import NB201Space, parse_nb201

    arch = parse_nb201("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    net = NB201Space(channels=4, cells_per_stage=1).build(arch, num_classes=10)
    path = tmp_path / "net.onnx"
    export_onnx(net, torch.zeros(1, 3, 32, 32), path)
    timing = remote(agent).time(path, (2, 3, 32, 32))
    assert timing.n == 7 and timing.median_ms > 0


def test_agent_reports_the_settings_it_used(agent, model_file):
    answer = AgentClient(agent, TOKEN).time(model_file, {"repeats": 3, "warmup": 0, "graph_optimization": "basic",
                                                         "intra_op_threads": 1, "spinning": False})
    assert answer["timing"]["n"] == 3
    s = answer["settings"]
    assert s["graph_optimization"] == "basic" and s["spinning"] is False and s["input_shape"] == [1, 4]
    assert answer["providers"][0] == "CPUExecutionProvider"


def test_concurrent_requests_are_timed_one_at_a_time(agent, model_file):
    from concurrent.futures import ThreadPoolExecutor

    client = AgentClient(agent, TOKEN)
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: client.time(model_file, {"repeats": 300, "warmup": 0}), range(3)))
    assert all(a["timing"]["n"] == 300 for a in answers)
    held = sorted(tuple(a["held_s"]) for a in answers)
    assert all(end <= nxt_start for (_, end), (nxt_start, _) in zip(held, held[1:]))


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_missing_or_wrong_token(agent, model_file, token):
    client = AgentClient.__new__(AgentClient)  # bypass the client's own empty-token check
    client.url, client.token, client.timeout_s = agent, token, 10.0
    for call in (client.info, lambda: client.time(model_file, {})):
        with pytest.raises(HwnasError, match="rejected the token"):
            call()
    # The runner with no token anywhere refuses before contacting the agent.
    os.environ.pop("HWNAS_AGENT_TOKEN", None)
    with pytest.raises(HwnasError, match="token"):
        remote(agent, token="")


def test_corrupt_model(agent):
    with pytest.raises(HwnasError, match=r"\(422\): the upload is not an ONNX model: the protobuf does not parse"):
        AgentClient(agent, TOKEN).time(b"this is not an onnx model" * 10, {"input_shape": [1, 4]})
    # A well-formed protobuf (ir_version=8) that is no model: onnxruntime's refusal.
    with pytest.raises(HwnasError, match=r"\(422\): onnxruntime cannot load the model"):
        AgentClient(agent, TOKEN).time(b"\x08\x08", {"input_shape": [1, 4]})


def test_model_that_fails_to_run(agent):
    # Loads (dynamic input), but reshaping 4 values to [3] fails at run time.
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([3], dtype=np.int64), "shape")
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "bad",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], initializer=[shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(HwnasError, match=r"\(422\): onnxruntime failed to run the model"):
        AgentClient(agent, TOKEN).time(model.SerializeToString(), {"input_shape": [4]})


def test_wrong_input_shape(agent, model_file):
    with pytest.raises(HwnasError, match=r"does not fit the model's input"):
        remote(agent).time(model_file, (1, 5))


def test_oversized_upload_is_refused(agent, tmp_path):
    big = tiny_model_bytes(pad=300_000)
    # The agent itself answers 413 without reading the body ...
    host, port = agent.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/time", body=big, headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 413 and "upload limit" in json.loads(resp.read())["error"]
    conn.close()
    # ... which the client reports clearly; the runner checks the limit before uploading.
    with pytest.raises(HwnasError, match="upload limit"):
        AgentClient(agent, TOKEN).time(big, {})
    path = tmp_path / "big.onnx"
    path.write_bytes(big)
    with pytest.raises(HwnasError, match="upload limit"):
        remote(agent).time(path, (1, 4))


@pytest.mark.parametrize("settings, message", [
    ({"repeats": 0}, "repeats must be in 1..100000"),
    ({"repeats": "5"}, "repeats must be an integer"),
    ({"warmup": True}, "warmup must be an integer"),
    ({"graph_optimization": "max"}, "graph_optimization must be one of"),
    ({"provider": "NoSuchExecutionProvider"}, "not available on this agent"),
    ({"input_shape": [1, -4]}, "input_shape must be a list"),
    ({"repeat": 5}, "unknown setting"),
])
def test_bad_settings(agent, model_file, settings, message):
    with pytest.raises(HwnasError, match=r"\(400\): .*" + message):
        AgentClient(agent, TOKEN).time(model_file, settings)


def test_unknown_endpoint(agent):
    client = AgentClient(agent, TOKEN)
    with pytest.raises(HwnasError, match="no hwnas agent endpoint"):
        client._request("GET", "/nothing")


def test_unreachable_agent(model_file):
    # A port bound but not listening, held for the whole test: connections are refused, and no
    # other process (another xdist worker's agent) can take the port meanwhile.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        runner = remote(f"http://127.0.0.1:{held.getsockname()[1]}")
        ok, why = runner.available()
        assert not ok and "unreachable" in why and "profiling/agent.py" in why
        with pytest.raises(HwnasError, match="unreachable"):
            runner.time(model_file, (1, 4))


def test_runner_option_errors():
    with pytest.raises(HwnasError, match="runner.options.url"):
        RUNNERS.get("remote")(TimingSettings(), token=TOKEN)
    with pytest.raises(HwnasError, match="unknown option"):
        RUNNERS.get("remote")(TimingSettings(), url="http://127.0.0.1:1", token=TOKEN, provder="cpu")
    with pytest.raises(HwnasError, match="fp32"):
        RUNNERS.get("remote")(TimingSettings(precision="fp16"), url="http://127.0.0.1:1", token=TOKEN)


@pytest.mark.parametrize("options, message", [
    ({"timeout_s": "abc"}, "runner.options.timeout_s='abc' must be a number of seconds > 0"),
    ({"timeout_s": 0}, "runner.options.timeout_s=0 must be a number of seconds > 0"),
    ({"timeout_s": "nan"}, "must be a number of seconds"),
    ({"seed": "x"}, "runner.options.seed='x' must be an integer"),
    ({"seed": 1.5}, "runner.options.seed=1.5 must be an integer"),
    ({"provider": 3}, "runner.options.provider=3 must be"),
])
def test_runner_options_are_checked(options, message):
    from hwnas.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        RUNNERS.get("remote")(TimingSettings(), url="http://127.0.0.1:1", token=TOKEN, **options)
    assert message in str(exc.value)
    runner = RUNNERS.get("remote")(TimingSettings(), url="http://127.0.0.1:1", token=TOKEN, timeout_s="30", seed="3")
    assert runner.client.timeout_s == 30.0 and runner.seed == 3


@pytest.mark.parametrize("args, env_token, message", [
    ([], None, "no token"),
    (["--token", "  "], None, "no token"),
    ([], "", "no token"),
    (["--token", "0123456789abcde"], None, "it must be at least 16"),  # 15 characters
    (["--token", "t"], None, "it must be at least 16"),
    (["--token", "  0123456789abcde  "], None, "it must be at least 16"),  # spaces do not count
    ([], "short-env-token", "it must be at least 16"),
    (["--token", TOKEN, "--max-upload-mb", "0"], None, "--max-upload-mb must be > 0"),
    (["--token", TOKEN, "--max-upload-mb", "inf"], None, "--max-upload-mb must be > 0"),
    (["--token", TOKEN, "--time-limit-s", "0"], None, "--time-limit-s must be a number of seconds > 0"),
    (["--token", TOKEN, "--time-limit-s", "nan"], None, "--time-limit-s must be a number of seconds > 0"),
    (["--token", TOKEN, "--host", "256.1.1.1"], None, "cannot listen on 256.1.1.1"),
])
def test_agent_refuses_to_start(args, env_token, message):
    env = {k: v for k, v in os.environ.items() if k != "HWNAS_AGENT_TOKEN"}
    if env_token is not None:
        env["HWNAS_AGENT_TOKEN"] = env_token
    proc = subprocess.run([sys.executable, str(AGENT), "--port", "0", *args], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_agent_help_states_the_token_length_and_time_limit():
    out = subprocess.run([sys.executable, str(AGENT), "--help"], capture_output=True, text=True, timeout=60).stdout
    out = " ".join(out.split())  # argparse wraps to the terminal's width
    assert "at least 16 characters" in out and "--time-limit-s" in out and "default 120" in out
    readme = " ".join((REPO / "profiling" / "README.md").read_text().split())
    assert "at least 16 characters" in readme and "--time-limit-s" in readme and "120 s" in readme


def test_agent_takes_the_token_from_the_environment(model_file):
    env = {**os.environ, "HWNAS_AGENT_TOKEN": "from-env-0123456789"}
    proc = subprocess.Popen([sys.executable, str(AGENT), "--port", "0", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = proc.stdout.readline().split("listening on", 1)[1].strip()
        assert AgentClient(url, "from-env-0123456789").time(model_file, {"repeats": 2})["timing"]["n"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_agent_needs_neither_torch_nor_hwnas(tmp_path):
    # Static: every import of the agent is the standard library, numpy or onnxruntime.
    tree = ast.parse(AGENT.read_text(), feature_version=(3, 9))  # the oldest Python it promises
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    third_party = mods - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"numpy", "onnxruntime"}
    # Dynamic: load it outside the repository and time a model; neither torch nor hwnas is imported.
    model = tmp_path / "m.onnx"
    model.write_bytes(tiny_model_bytes())
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('agent', {str(AGENT)!r})\n"
        "agent = importlib.util.module_from_spec(spec); spec.loader.exec_module(agent)\n"
        "s = agent.parse_settings('{\"repeats\": 3, \"warmup\": 1}')\n"
        f"out = agent.time_model(open({str(model)!r}, 'rb').read(), s)\n"
        "assert out['timing']['n'] == 3, out\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'hwnas')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_measure_then_fit_a_device(agent, tmp_path, data_dir, capsys):
    """Agent -> whole-network timings (hwnas.profiling.measure) -> device=fitted over the space."""
    import numpy as np

    from hwnas.config import DeviceConfig
    from hwnas.latency.sources import make_latency_source
    from hwnas.profiling.measure import main
    from hwnas.spaces import NB201Space

    out = tmp_path / "measured.csv"
    lines = []
    main(["--url", agent, "--token", TOKEN, "--n", "12", "--seed", "1", "--channels", "4", "--cells", "1",
          "--warmup", "1", "--repeats", "3", "--out", str(out), "--data-dir", str(data_dir)], log=lines.append)
    rows = out.read_text().splitlines()
    assert rows[0] == "index,arch,latency_ms,iqr_ms,n" and len(rows) == 13 and "device=fitted" in lines[-1]
    space = NB201Space(data_dir=data_dir)
    src = make_latency_source(space, DeviceConfig(name="agent-dev", kind="fitted", path=str(out)), "cifar10", data_dir)
    lat = src.all_latency()
    assert lat.shape == (15625,) and np.all(np.isfinite(lat)) and np.all(lat > 0)


def test_measure_needs_the_agent_address(tmp_path, data_dir, capsys):
    from hwnas.profiling.measure import main

    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "m.csv"), "--token", TOKEN, "--data-dir", str(data_dir)])
    assert exc.value.code == 2 and "--url http://<device>:8765 is required" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


def test_remote_default_table_name_is_the_agents_device(agent):
    """runner=remote without device=: the table is named after the agent's board or CPU, not this machine's GPU."""
    from hwnas.apps.profile import _slug, default_device_name
    from hwnas.profiling.config import ProfileConfig, RunnerConfig

    cfg = ProfileConfig(runner=RunnerConfig(name="remote"), threads=2, batch=1)
    runner = remote(agent)
    info = runner.fingerprint()["agent"]
    name = default_device_name(cfg, runner)
    assert name == f"remote-{_slug(str(info.get('board') or info['cpu']))}-t2-b1" and "nvidia" not in name

    class Board:  # what a Raspberry Pi agent reports
        def fingerprint(self):
            return {"agent": {"cpu": "Cortex-A72", "board": "Raspberry Pi 4 Model B Rev 1.4\x00"}}

    assert default_device_name(cfg, Board()) == "remote-raspberry-pi-4-model-b-rev-1-4-t2-b1"

    class Anonymous:
        def fingerprint(self):
            return {"agent": {"cpu": "", "board": None}}

    with pytest.raises(HwnasError, match="pass device=<name>"):
        default_device_name(cfg, Anonymous())


def test_measure_resumes_writes_every_row_and_keeps_the_global_rng(agent, tmp_path, data_dir):
    import torch

    from hwnas.profiling.measure import main

    out = tmp_path / "m.csv"
    args = ["--url", agent, "--token", TOKEN, "--n", "4", "--seed", "2", "--channels", "4", "--cells", "1",
            "--warmup", "1", "--repeats", "3", "--out", str(out), "--data-dir", str(data_dir)]
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    main(args, log=lambda _: None)
    assert torch.equal(torch.random.get_rng_state(), state)  # seeded weights: the caller's RNG untouched
    full = out.read_text().splitlines()
    assert len(full) == 5
    out.write_text("\n".join(full[:3]) + "\n")  # an interrupted run: two architectures timed
    lines = []
    main(args, log=lines.append)
    again = out.read_text().splitlines()
    assert again[:3] == full[:3] and len(again) == 5
    assert sorted(r.split(",")[0] for r in again[1:]) == sorted(r.split(",")[0] for r in full[1:])
    assert "2 architectures already timed" in lines[0] and sum(line.startswith("[") for line in lines) == 2
    assert lines[1].startswith("[1/2]")


@pytest.mark.parametrize("n", ["0", "15626"])
def test_measure_checks_n(tmp_path, data_dir, capsys, n):
    from hwnas.profiling.measure import main

    with pytest.raises(SystemExit) as exc:
        main(["--url", "http://127.0.0.1:1", "--token", TOKEN, "--n", n, "--out", str(tmp_path / "m.csv"),
              "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "must be in 1..15625" in err and "Traceback" not in err


def test_measure_refuses_an_out_that_is_not_its_csv(tmp_path, data_dir, capsys):
    from hwnas.profiling.measure import main

    out = tmp_path / "notes.md"
    out.write_text("# my notes\n")
    with pytest.raises(SystemExit) as exc:
        main(["--url", "http://127.0.0.1:1", "--token", TOKEN, "--out", str(out), "--data-dir", str(data_dir)])
    assert exc.value.code == 2 and "not a CSV written by hwnas.profiling.measure" in capsys.readouterr().err
    assert out.read_text() == "# my notes\n"


# --- refusals found by testing the agent as an attacker or under load ------------------------
SECRET = b"HWNAS-SECRET-7f3a9c1e-do-not-leak"


def _value_info(name: str, shape=(1, 4)):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _external_tensor(name: str, secret_file: Path, how: str = "both"):
    """A [1, 4] float tensor whose data 'lives' in `secret_file`, reached by ../../ from anywhere."""
    from onnx import TensorProto

    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[1, 4])
    if how in ("both", "location"):
        tensor.data_location = TensorProto.EXTERNAL
    if how in ("both", "entries"):
        for key, value in (("location", "../" * 12 + str(secret_file).lstrip("/")), ("offset", "0"), ("length", "16")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
    return tensor


def external_data_model(secret_file: Path, where: str, how: str = "both") -> bytes:
    """y = x + c where c (or a tensor nested somewhere in the model) refers to external data."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    ext = _external_tensor("c", secret_file, how)
    ones = numpy_helper.from_array(np.ones((1, 4), dtype=np.float32), "c")
    add = helper.make_node("Add", ["x", "c"], ["y"])
    nodes, inits, sparse, functions = [add], [], [], []
    if where == "initializer":
        inits = [ext]
    elif where == "constant_attribute":
        nodes = [helper.make_node("Constant", [], ["c"], value=ext), add]
    elif where == "if_subgraph":  # c comes out of an If whose then-branch holds the external initializer
        def branch(t):
            return helper.make_graph([helper.make_node("Identity", ["k"], ["c_out"])], "b", [],
                                     [_value_info("c_out")], initializer=[t])

        kb = TensorProto(name="k")
        kb.CopyFrom(ext)
        kb.name = "k"
        ko = numpy_helper.from_array(np.ones((1, 4), dtype=np.float32), "k")
        cond = numpy_helper.from_array(np.array(True), "cond")
        inits = [cond]
        nodes = [helper.make_node("If", ["cond"], ["c"], then_branch=branch(kb), else_branch=branch(ko)), add]
    elif where == "loop_body_constant":  # a Constant attribute inside a Loop body inside an If
        body = helper.make_graph(
            [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
             helper.make_node("Constant", [], ["k"], value=ext),
             helper.make_node("Add", ["v_in", "k"], ["v_out"])], "body",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []),
             helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), _value_info("v_in")],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), _value_info("v_out")])
        trips = numpy_helper.from_array(np.array(1, dtype=np.int64), "trips")
        cond = numpy_helper.from_array(np.array(True), "cond")
        inits = [trips, cond, ones]
        nodes = [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)]
    elif where == "sparse_initializer":
        idx = numpy_helper.from_array(np.array([0], dtype=np.int64), "c_idx")
        values = TensorProto()
        values.CopyFrom(ext)
        values.dims[:] = [1]
        sparse = [helper.make_sparse_tensor(values, idx, [1, 4])]
    elif where == "sparse_attribute":
        idx = numpy_helper.from_array(np.array([0], dtype=np.int64), "c_idx")
        values = TensorProto()
        values.CopyFrom(ext)
        values.dims[:] = [1]
        nodes = [helper.make_node("Constant", [], ["c"], sparse_value=helper.make_sparse_tensor(values, idx, [1, 4])),
                 add]
    elif where == "function":
        fn = helper.make_function("local", "AddC", ["a"], ["b"],
                                  [helper.make_node("Constant", [], ["k"], value=ext),
                                   helper.make_node("Add", ["a", "k"], ["b"])],
                                  [helper.make_opsetid("", 17)])
        functions = [fn]
        nodes = [helper.make_node("AddC", ["x"], ["y"], domain="local")]
    else:
        raise AssertionError(where)
    graph = helper.make_graph(nodes, "ext", [_value_info("x")], [_value_info("y")], initializer=inits,
                              sparse_initializer=sparse)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
                              functions=functions)
    model.ir_version = 8
    return model.SerializeToString()


WHERE = ["initializer", "constant_attribute", "if_subgraph", "loop_body_constant", "sparse_initializer",
         "sparse_attribute", "function"]


@pytest.mark.parametrize("how", ["both", "location", "entries"])
@pytest.mark.parametrize("where", WHERE)
def test_model_with_external_data_is_refused(agent, tmp_path, where, how):
    secret_file = tmp_path / "secret.bin"
    secret_file.write_bytes(SECRET * 4)
    model = external_data_model(secret_file, where, how)
    conn = http.client.HTTPConnection(*host_port(agent), timeout=60)
    conn.request("POST", "/time", body=model, headers={"Authorization": f"Bearer {TOKEN}",
                                                      "X-Hwnas-Settings": json.dumps({"repeats": 1, "warmup": 0})})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 422
    assert "refers to external data" in json.loads(body)["error"]
    assert SECRET[:8] not in body and b"SECRET" not in body
    with pytest.raises(HwnasError, match=r"\(422\): the model refers to external data"):
        AgentClient(agent, TOKEN).time(model, {"repeats": 1, "warmup": 0})


def test_external_data_is_refused_before_any_onnxruntime_session(tmp_path, monkeypatch):
    mod = load_agent()
    secret_file = tmp_path / "secret.bin"
    secret_file.write_bytes(SECRET * 4)

    def no_session(*args, **kwargs):
        raise AssertionError("an onnxruntime session was created")

    monkeypatch.setattr(mod.ort, "InferenceSession", no_session)
    settings = mod.parse_settings('{"repeats": 1, "warmup": 0}')
    for where in WHERE:
        model = external_data_model(secret_file, where)
        with pytest.raises(mod.RequestError) as exc:
            mod.check_model_bytes(model)
        assert exc.value.status == 422 and "external data" in exc.value.message
        with pytest.raises(mod.RequestError, match="external data"):
            mod.time_model(model, settings)
    # Self-contained models pass the check, subgraphs included; garbage does not.
    mod.check_model_bytes(tiny_model_bytes())
    mod.check_model_bytes(loop_model_bytes(3))
    for junk in (b"this is not an onnx model", b"\x3a\xff\xff\xff\xff\x0f", b"\x3a\x05\x0a", b"\x0b"):
        with pytest.raises(mod.RequestError, match="not an ONNX model") as exc:
            mod.check_model_bytes(junk)
        assert exc.value.status == 422


def ep_context_model(secret_file: Path, where: str) -> bytes:
    """y = EPContext(x) (embed_mode=0, ep_cache_context naming `secret_file`), in the main graph,
    in an If branch, or in a local function."""
    import numpy as np
    from onnx import helper, numpy_helper

    node = helper.make_node("EPContext", ["x"], ["y"], domain="com.microsoft", embed_mode=0,
                            ep_cache_context=str(secret_file), source="TensorrtExecutionProvider")
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    functions = []
    if where == "graph":
        nodes = [node]
    elif where == "if_subgraph":
        branch = helper.make_graph([node], "then", [], [_value_info("y")])
        other = helper.make_graph([helper.make_node("Identity", ["x"], ["y2"])], "else", [], [_value_info("y2")])
        nodes = [helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True))),
                 helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other)]
    else:  # a local function whose body holds the node
        functions = [helper.make_function("local", "wrap", ["x"], ["y"], [node], opsets)]
        nodes = [helper.make_node("wrap", ["x"], ["y"], domain="local")]
        opsets = opsets + [helper.make_opsetid("local", 1)]
    graph = helper.make_graph(nodes, "ep", [_value_info("x")], [_value_info("y")])
    model = helper.make_model(graph, opset_imports=opsets, functions=functions)
    model.ir_version = 8
    return model.SerializeToString()


@pytest.mark.parametrize("where", ["graph", "if_subgraph", "function"])
def test_ep_context_node_is_refused(agent, tmp_path, monkeypatch, where):
    # An EPContext node with embed_mode=0 makes TensorRT/OpenVINO/QNN read the file it names.
    secret_file = tmp_path / "engine.bin"
    secret_file.write_bytes(SECRET * 4)
    model = ep_context_model(secret_file, where)
    mod = load_agent()
    with pytest.raises(mod.RequestError, match="EPContext node") as exc:
        mod.check_model_bytes(model)
    assert exc.value.status == 422
    with pytest.raises(HwnasError, match=r"\(422\): the model contains an EPContext node"):
        AgentClient(agent, TOKEN).time(model, {"repeats": 1, "warmup": 0})
    # A node merely *named* EPContext, or an input called so, is fine.
    from onnx import helper
    graph = helper.make_graph([helper.make_node("Relu", ["EPContext"], ["y"], name="EPContext")], "g",
                              [_value_info("EPContext")], [_value_info("y")])
    plain = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    mod.check_model_bytes(plain.SerializeToString())


def loop_model_bytes(trips: int) -> bytes:
    """y = x, passed `trips` times through a Loop (2**62: never finishes)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), _value_info("v_in")],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), _value_info("v_out")])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)], "loop", [_value_info("x")],
        [_value_info("y")], initializer=[numpy_helper.from_array(np.array(trips, dtype=np.int64), "trips"),
                                         numpy_helper.from_array(np.array(True), "cond")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _children_of(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (Linux /proc)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry.name))
    return kids


def test_time_limit_stops_the_measurement_and_frees_the_device(model_file):
    # In-process agent, so that the follow-up requests get a larger limit on the *same* agent:
    # they show the device is free without racing a 4 s limit on a busy machine.
    mod = load_agent()
    server = mod.AgentServer(("127.0.0.1", 0), TOKEN, quiet=True, time_limit_s=4)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        host, port = server.server_address[:2]
        client = AgentClient(f"http://{host}:{port}", TOKEN, timeout_s=300)
        assert client.info()["time_limit_s"] == 4
        endless = loop_model_bytes(2**62)
        others = set(_children_of(os.getpid()))  # this process's own (a module fixture's agent)
        with pytest.raises(HwnasError, match=r"\(408\): the measurement exceeded the agent's time limit of 4 s"):
            client.time(endless, {"repeats": 1, "warmup": 0})
        if sys.platform.startswith("linux"):
            assert set(_children_of(os.getpid())) <= others  # the timing process is gone, not left running
        server.time_limit_s = mod.DEFAULT_TIME_LIMIT
        # The device is free: the next request is timed.
        assert client.time(model_file, {"repeats": 3, "warmup": 0})["timing"]["n"] == 3
        # A model that finishes is not affected.
        assert client.time(loop_model_bytes(3), {"repeats": 2, "warmup": 0})["timing"]["n"] == 2
    finally:
        server.shutdown()
        server.server_close()


def test_time_limit_flag_reaches_the_agent():
    proc, url = start_agent("--time-limit-s", "4")
    try:
        assert AgentClient(url, TOKEN).info()["time_limit_s"] == 4
    finally:
        stop_agent(proc)


def test_timing_child_closes_every_socket_it_inherits(monkeypatch):
    """The forked timing process closes the agent's sockets (the listening one and every client's
    connection), so none outlives the agent or is held by the child; its result pipe still works."""
    mod = load_agent()
    if mod._context().get_start_method() != "fork":
        pytest.skip("only a forked child inherits the agent's descriptors")

    def open_sockets(model, s):  # runs in the child, in place of the timing
        fds = [int(name) for name in os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd")]
        found = []
        for fd in fds:
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    found.append(fd)
            except OSError:
                pass
        return {"sockets": found}

    monkeypatch.setattr(mod, "time_model", open_sockets)
    client_a, client_b = socket.socketpair()  # stand-ins for two clients' connections
    with socket.socket() as listening, client_a, client_b:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert mod.measure(tiny_model_bytes(), mod.parse_settings(None), 120) == {"sockets": []}
        # Closed in the child only: the agent's own sockets still work.
        client_a.sendall(b"x")
        assert client_b.recv(1) == b"x"


def test_many_clients_at_once_are_all_accepted():
    """30 connections opened before the agent accepts any fit in its listen queue (socketserver's
    default of 5 made the 7th wait for SYN retries, or be reset), then all get their answer."""
    mod = load_agent()
    server = mod.AgentServer(("127.0.0.1", 0), TOKEN, quiet=True)
    host, port = server.server_address[:2]
    socks, serving = [], None
    try:
        for _ in range(30):
            sock = socket.socket()
            sock.settimeout(5)
            sock.connect((host, port))  # completed by the kernel while nothing accepts
            socks.append(sock)
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        request = (f"GET /info HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
                   f"Connection: close\r\n\r\n").encode()
        for sock in socks:
            sock.settimeout(60)
            sock.sendall(request)
        for sock in socks:
            data = b""
            while chunk := sock.recv(1 << 16):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data[:200]
    finally:
        for sock in socks:
            sock.close()
        if serving is not None:  # shutdown() waits for a serve_forever() that runs
            server.shutdown()
        server.server_close()


def test_concurrent_info_requests_all_succeed(agent):
    client = AgentClient(agent, TOKEN, timeout_s=60)
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda _: client.info(), range(60)))
    assert len(answers) == 60 and all(a["max_upload_bytes"] == int(LIMIT_MB * 2**20) for a in answers)


class ResettingServer:
    """Loopback server that resets every connection, except that GET /info answers
    max_upload_bytes=`limit` when `limit` is set."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import struct

        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:  # a timeout, mostly
                continue
            with conn:
                conn.settimeout(10)
                head = b""
                try:
                    while b"\r\n\r\n" not in head and (chunk := conn.recv(4096)):
                        head += chunk
                except OSError:
                    continue
                if head.startswith(b"GET /info") and self.limit is not None:
                    body = json.dumps({"max_upload_bytes": self.limit}).encode()
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
                    continue
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.listener.close()


def test_client_reports_a_reset_as_a_reset():
    server = ResettingServer(limit=None)
    try:
        client = AgentClient(server.url, TOKEN, timeout_s=30)
        for call in (client.info, lambda: client.time(b"\x08\x08" * 500, {})):
            with pytest.raises(HwnasError) as exc:
                call()
            message = str(exc.value)
            assert "reset the connection" in message and "retry" in message
            assert "upload limit" not in message and "max-upload" not in message
    finally:
        server.close()


def test_client_blames_the_upload_limit_only_when_the_model_is_over_it():
    server = ResettingServer(limit=100)
    try:
        client = AgentClient(server.url, TOKEN, timeout_s=30)
        with pytest.raises(HwnasError, match="over the agent's upload limit of 100 bytes"):
            client.time(b"\x08\x08" * 500, {})
        with pytest.raises(HwnasError, match="reset the connection.*retry") as exc:
            client.time(b"\x08\x08" * 10, {})  # 20 bytes: under the limit, so not the reason
        assert "upload limit" not in str(exc.value)
    finally:
        server.close()


@pytest.mark.parametrize("value", [b"\xb2", b"\xb9\xb2", b"-1", b"+5", b"1_0", b"0x10", b"5 5", b"", b"1" * 40,
                                   b"\xef\xbc\x91"])  # superscript two (latin-1), a fullwidth 1 (UTF-8), ...
@pytest.mark.parametrize("method, path", [("POST", "/time"), ("GET", "/info")])
def test_malformed_content_length(agent, value, method, path):
    head = f"{method} {path} HTTP/1.1\r\nHost: agent\r\n".encode()
    status, body = raw_exchange(agent, head + b"Content-Length: " + value + b"\r\n\r\n")
    assert status == 401 and "token" in body["error"]  # the token first, even for a broken request
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    status, body = raw_exchange(agent, head + auth + b"Content-Length: " + value + b"\r\n\r\n")
    assert status == 400 and "malformed Content-Length" in body["error"]
    status, body = raw_exchange(agent, head + auth + b"Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd")
    assert status == 400 and "malformed Content-Length" in body["error"]
    AgentClient(agent, TOKEN).info()  # the agent still serves


@pytest.mark.parametrize("header, message", [
    ('{"a":' * 5000 + "1" + "}" * 5000, "at most 4096"),
    ("[" * 5000 + "]" * 5000, "at most 4096"),
    ("[" * 2000 + "]" * 2000, "nested too deeply"),  # under the length cap: json's RecursionError
    ('{"repeats": 3' + " " * 5000 + "}", "at most 4096"),
])
def test_deeply_nested_or_long_settings_header(agent, model_file, header, message):
    conn = http.client.HTTPConnection(*host_port(agent), timeout=60)
    conn.request("POST", "/time", body=model_file.read_bytes(),
                 headers={"Authorization": f"Bearer {TOKEN}", "X-Hwnas-Settings": header})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 400 and message in body["error"] and "X-Hwnas-Settings" in body["error"]
    mod = load_agent()
    with pytest.raises(mod.RequestError, match=message):
        mod.parse_settings(header)


def test_request_handling_never_asks_onnxruntime_for_its_providers(monkeypatch):
    # Handler threads run while a timing child may be forking: the providers are read once at
    # start-up, so a request does not call into onnxruntime from another thread.
    mod = load_agent()

    def asked(*args, **kwargs):
        raise AssertionError("onnxruntime was asked for its providers while handling a request")

    monkeypatch.setattr(mod.ort, "get_available_providers", asked)
    assert mod.parse_settings('{"provider": "cpu"}')["provider"] == "CPUExecutionProvider"
    with pytest.raises(mod.RequestError, match="not available on this agent; available: .*CPUExecutionProvider"):
        mod.parse_settings('{"provider": "NoSuchExecutionProvider"}')
    assert "CPUExecutionProvider" in mod.fingerprint()["providers"]


def test_warmup_model_is_a_valid_onnx_model():
    # The agent writes its start-up model's protobuf by hand (it has no onnx package).
    import onnx

    mod = load_agent()
    model = onnx.load_from_string(mod._warmup_model())
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu"]
    mod.check_model_bytes(mod._warmup_model())


def test_short_token_is_refused_by_the_server_too():
    mod = load_agent()
    with pytest.raises(ValueError, match="at least 16"):
        mod.AgentServer(("127.0.0.1", 0), "x" * 15)


@pytest.mark.parametrize("request_bytes, status", [
    (b"PUT /time HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n", 405),
    (b"DELETE /info HTTP/1.1\r\nHost: a\r\n\r\n", 401),
    (b"FROB /info HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /info HTTP/9.9\r\nHost: a\r\n\r\n", 505),
    (b"GET /info HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"POST /time HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + TOKEN.encode()
     + b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    (b"GET /info HTTP/1.1\r\nHost: a\r\nAuthorization: Basic " + TOKEN.encode() + b"\r\n\r\n", 401),
    (b"GET /info HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer \xff\xfe" + TOKEN.encode() + b"\r\n\r\n", 401),
])
def test_every_refusal_is_json(agent, request_bytes, status):
    got, body = raw_exchange(agent, request_bytes)
    assert got == status and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in body["error"] and "<html" not in body["error"].lower()
