"""HTTP client of the edge agent (profiling/agent.py): fingerprint and timing requests.

Every failure becomes an AgentError (a HwnasError) whose message says what went wrong and
what to do: the agent is not running, the token is wrong, the model is too large or broken.
"""
from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

from hwnas.errors import HwnasError

SETTINGS_HEADER = "X-Hwnas-Settings"
START_HINT = "start it on the device with `python3 profiling/agent.py --host 0.0.0.0 --token <secret>`"


# A connection reset, aborted or closed by the agent without an answer (RemoteDisconnected is a
# ConnectionResetError); refused connections stay "unreachable".
RESET = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


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

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                 timeout_s: float | None = None) -> dict:
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except urllib.error.URLError as exc:  # raised while connecting or sending
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise AgentError(f"agent at {self.url} did not answer within {timeout_s:g} s "
                                 f"(runner.options.timeout_s); a long measurement needs a larger timeout") from None
            if isinstance(reason, RESET):
                raise self._reset_error(reason, body) from None
            raise AgentError(f"agent at {self.url} unreachable: {reason}; {START_HINT}") from None
        except (socket.timeout, TimeoutError):
            raise AgentError(f"agent at {self.url} did not answer within {timeout_s:g} s "
                             f"(runner.options.timeout_s)") from None
        except RESET as exc:  # raised while waiting for or reading the answer
            raise self._reset_error(exc, body) from None
        except (ConnectionError, OSError) as exc:
            raise AgentError(f"agent at {self.url} unreachable: {exc}; {START_HINT}") from None
        except http.client.HTTPException as exc:
            raise AgentError(f"{self.url}{path} answered with a malformed HTTP response ({exc!r}): "
                             f"is this an hwnas agent?") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise AgentError(f"{self.url}{path} did not answer JSON: is this an hwnas agent?") from None

    def _reset_error(self, exc: BaseException, body: bytes | None) -> AgentError:
        """A connection the agent reset or closed without answering. It is not blamed on the upload
        size unless the agent's own upload limit (from /info) shows the model is over it: a reset
        is more often a busy or restarting agent."""
        what = f"agent at {self.url} reset the connection before answering ({type(exc).__name__})"
        if body is not None:
            try:
                limit = self._request("GET", "/info", timeout_s=min(self.timeout_s, 10.0)).get("max_upload_bytes")
            except (AgentError, AttributeError):
                limit = None
            if isinstance(limit, int) and len(body) > limit:
                return AgentError(f"{what} while receiving a model of {len(body)} bytes, over the agent's "
                                  f"upload limit of {limit} bytes: restart the agent with a larger --max-upload-mb")
        return AgentError(f"{what}; it may be busy with many clients at once or restarting: retry the request")

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
