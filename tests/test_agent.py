"""The edge agent (profiling/agent.py) and its client (runner=remote), over loopback HTTP."""
from __future__ import annotations

import ast
import http.client
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hwnas.errors import HwnasError
from hwnas.profiling.agent_client import AgentClient
from hwnas.profiling.runners import RUNNERS, TimingSettings

REPO = Path(__file__).resolve().parents[1]
AGENT = REPO / "profiling" / "agent.py"
TOKEN = "test-secret-token"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def agent():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HWNAS_AGENT_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, str(AGENT), "--host", "127.0.0.1", "--port", "0", "--token", TOKEN,
         "--max-upload-mb", str(LIMIT_MB), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd="/",
    )
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        pytest.fail(f"agent did not start: {line!r} {proc.stderr.read()}")
    url = line.split("listening on", 1)[1].strip()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


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
    with pytest.raises(HwnasError, match=r"\(422\): onnxruntime cannot load the model"):
        AgentClient(agent, TOKEN).time(b"this is not an onnx model" * 10, {"input_shape": [1, 4]})


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
    runner = remote(f"http://127.0.0.1:{free_port()}")
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
    (["--token", "t", "--max-upload-mb", "0"], None, "--max-upload-mb must be > 0"),
    (["--token", "t", "--host", "256.1.1.1"], None, "cannot listen on 256.1.1.1"),
])
def test_agent_refuses_to_start(args, env_token, message):
    env = {k: v for k, v in os.environ.items() if k != "HWNAS_AGENT_TOKEN"}
    if env_token is not None:
        env["HWNAS_AGENT_TOKEN"] = env_token
    proc = subprocess.run([sys.executable, str(AGENT), "--port", "0", *args], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_agent_takes_the_token_from_the_environment(model_file):
    env = {**os.environ, "HWNAS_AGENT_TOKEN": "from-env"}
    proc = subprocess.Popen([sys.executable, str(AGENT), "--port", "0", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = proc.stdout.readline().split("listening on", 1)[1].strip()
        assert AgentClient(url, "from-env").time(model_file, {"repeats": 2})["timing"]["n"] == 2
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
