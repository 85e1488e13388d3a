"""The one client of the control plane's HTTP API, used by the CLI and the tests.

    client = ApiClient.for_settings(settings)       # GSP_API_URL, else the running `gsp serve`
    client.get("/api/subscriptions")
    client.post("/api/subscriptions", {...})

Answers are decoded JSON (``text=True``: the body as text). An error answer becomes a
`UserError` carrying the server's one-line message; an unreachable server, one saying so.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from gsp.errors import UserError
from gsp.http.tls import client_context
from schemas.settings import Settings

__all__ = ["ApiClient", "query"]


def query(**params: Any) -> str:
    """``?a=1&b=2`` of the parameters that are set (empty when none is)."""
    wanted = {k: v for k, v in params.items() if v not in (None, "", False)}
    return "?" + urllib.parse.urlencode(wanted) if wanted else ""


class ApiClient:
    def __init__(self, base_url: str, *, timeout_s: float = 30.0, ssl_context: ssl.SSLContext | None = None,
                 token: str | None = None) -> None:
        """``ssl_context`` verifies an https ``base_url`` (`gsp.http.tls.client_context`); None: the system's CAs.
        ``token``: the API token sent with every request."""
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context

    @classmethod
    def for_settings(cls, settings: Settings, *, timeout_s: float = 30.0) -> ApiClient:
        """GSP_API_URL, else the API of the `gsp serve` whose runtime file is in GSP_HOME, else GSP_API_PORT;
        an https one trusted by GSP_TLS_CA when set."""
        context, token = client_context(settings), settings.credential()
        if settings.api_url:
            return cls(settings.api_url, ssl_context=context, token=token, timeout_s=timeout_s)
        runtime = settings.home / "runtime.json"
        if runtime.exists():
            try:
                return cls(str(json.loads(runtime.read_text(encoding="utf-8"))["api_url"]), ssl_context=context,
                           token=token, timeout_s=timeout_s)
            except (OSError, ValueError, KeyError):
                raise UserError(f"{runtime} is unreadable; remove it or set GSP_API_URL") from None
        return cls(f"http://127.0.0.1:{settings.api_port}", ssl_context=context, token=token, timeout_s=timeout_s)

    def get(self, path: str, *, text: bool = False) -> Any:
        return self.call("GET", path, text=text)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, {} if body is None else body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.call("PUT", path, {} if body is None else body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def call(self, method: str, path: str, body: Any = None, *, text: bool = False) -> Any:
        request = urllib.request.Request(self.base_url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {self._token}"} if self._token else {})})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s, context=self._ssl_context) as response:
                data = response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            hint = ("; send a credential: set GSP_TOKEN, or run where the GSP_HOME of gsp serve holds admin.token"
                    if exc.code == 401 else "")
            raise UserError(_message(exc) + hint) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):  # it answered, but its certificate is not trusted (or not TLS)
                raise UserError(f"TLS with the control plane at {self.base_url} failed ({exc.reason}); "
                                "set GSP_TLS_CA to the CA bundle that signed its certificate") from None
            raise UserError(f"no control plane answering at {self.base_url} ({exc.reason}); "
                            "start one with gsp serve or set GSP_API_URL") from None
        except OSError as exc:  # a reset or a timeout mid-answer
            raise UserError(f"the control plane at {self.base_url} did not answer: {exc}") from None
        return data if text else json.loads(data or "null")


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.load(exc)
    except ValueError:
        return f"{exc.code} {exc.reason}"
    if isinstance(payload, dict):
        return str(payload.get("error") or payload.get("message") or f"{exc.code} {exc.reason}")
    return f"{exc.code} {exc.reason}"
