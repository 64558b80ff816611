"""HTTP client of the edge agent (profiling/agent.py): fingerprint and timing requests.

Every failure becomes an AgentError (a HwnasError) whose message says what went wrong and
what to do: the agent is not running, the token is wrong, the model is too large or broken.
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

from hwnas.errors import HwnasError

SETTINGS_HEADER = "X-Hwnas-Settings"
START_HINT = "start it on the device with `python3 profiling/agent.py --host 0.0.0.0 --token <secret>`"


class AgentError(HwnasError):
    """The edge agent could not be reached or refused a request."""


class AgentClient:
    def __init__(self, url: str, token: str, timeout_s: float = 300.0):
        if not url or not url.startswith(("http://", "https://")):
            raise AgentError(f"agent URL must look like http://<device>:8765, got {url!r} (runner.options.url)")
        if not token:
            raise AgentError("no agent token: pass runner.options.token=<secret> or set HWNAS_AGENT_TOKEN "
                             "to the token the agent was started with")
        if not timeout_s > 0:
            raise AgentError(f"agent timeout must be > 0 seconds, got {timeout_s}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = float(timeout_s)

    def info(self) -> dict:
        """The agent's /info: {"fingerprint": {...}, "max_upload_bytes": N, ...}."""
        return self._request("GET", "/info")

    def time(self, model: bytes | Path, settings: dict) -> dict:
        """Time an ONNX model (bytes or a path) with `settings`; the agent's answer as a dict."""
        body = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        return self._request("POST", "/time", body, {SETTINGS_HEADER: json.dumps(settings),
                                                     "Content-Type": "application/octet-stream"})

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> dict:
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise AgentError(f"agent at {self.url} did not answer within {self.timeout_s:g} s "
                                 f"(runner.options.timeout_s); a long measurement needs a larger timeout") from None
            if isinstance(reason, (ConnectionResetError, BrokenPipeError)) and body is not None:
                raise AgentError(f"agent at {self.url} closed the connection while receiving a model of "
                                 f"{len(body)} bytes; is it over the agent's upload limit (--max-upload-mb)?") from None
            raise AgentError(f"agent at {self.url} unreachable: {reason}; {START_HINT}") from None
        except (socket.timeout, TimeoutError):
            raise AgentError(f"agent at {self.url} did not answer within {self.timeout_s:g} s "
                             f"(runner.options.timeout_s)") from None
        except (ConnectionError, OSError) as exc:
            raise AgentError(f"agent at {self.url} unreachable: {exc}; {START_HINT}") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise AgentError(f"{self.url}{path} did not answer JSON: is this an hwnas agent?") from None

    def _http_error(self, exc: urllib.error.HTTPError) -> AgentError:
        try:
            message = json.loads(exc.read()).get("error") or exc.reason
        except (ValueError, AttributeError, OSError):
            message = exc.reason
        if exc.code == 401:
            return AgentError(f"agent at {self.url} rejected the token (401): set runner.options.token= or "
                              f"HWNAS_AGENT_TOKEN to the token the agent was started with")
        if exc.code == 404:
            return AgentError(f"{self.url} has no hwnas agent endpoint ({message}); is the URL right?")
        return AgentError(f"agent at {self.url} refused the request ({exc.code}): {message}")
