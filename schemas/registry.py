"""A small synchronous schema-registry client for the data plane, on the standard library only.

It speaks only Confluent's documented REST API, so it works against the
control plane's registry and against Confluent's own. Errors:

    RegistryClientError
    ├── RegistryUnavailable      nothing answered at the URL (refused, unknown host, timeout)
    └── RegistryRequestFailed    the registry answered with an error (status, error_code, message)
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["RegistryClient", "RegistryClientError", "RegistryRequestFailed", "RegistryUnavailable"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_ACCEPT = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"
_SUBJECT_NOT_FOUND = 40401


class RegistryClientError(Exception):
    """Base of the client's errors."""


class RegistryUnavailable(RegistryClientError):
    """No registry answered at the URL."""

    def __init__(self, url: str, reason: object) -> None:
        super().__init__(f"schema registry at {url} is unreachable: {reason}")
        self.url = url


class RegistryRequestFailed(RegistryClientError):
    """The registry refused a request; ``error_code`` is Confluent's (e.g. 409, 40401), if it sent one."""

    def __init__(self, status: int, error_code: int | None, message: str) -> None:
        super().__init__(f"schema registry answered {status} (error_code {error_code}): {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


class RegistryClient:
    """Registers and fetches Avro schemas; every call is one HTTP request, nothing is cached."""

    def __init__(self, base_url: str, *, timeout: float = 5.0, token: str | None = None,
                 cafile: str | os.PathLike[str] | None = None) -> None:
        """Credentials as Confluent's clients take them, in the URL (``https://key:secret@host``: HTTP Basic), or
        ``token``, a GSP API token sent as a bearer credential (for the control plane's own registry).
        ``cafile``: the CA bundle an https registry's certificate is checked against (default: the system's)."""
        self._ssl = ssl.create_default_context(cafile=cafile) if cafile else None
        parts = urllib.parse.urlsplit(base_url.rstrip("/"))
        self._authorization = None
        if parts.username is not None:
            pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._authorization = "Basic " + base64.b64encode(pair.encode()).decode()
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        elif token:
            self._authorization = f"Bearer {token}"
        # Without the credentials: base_url is what messages show.
        self.base_url = urllib.parse.urlunsplit(parts)
        self.timeout = timeout

    def register(self, subject: str, schema: dict[str, Any] | str) -> int:
        """The schema's global id; registers a new version if the subject lacks this schema."""
        answer = self._call("POST", f"/subjects/{_quote(subject)}/versions", {"schema": _text(schema)})
        return int(answer["id"])

    def schema_by_id(self, schema_id: int) -> str:
        return str(self._call("GET", f"/schemas/ids/{int(schema_id)}")["schema"])

    def latest(self, subject: str) -> tuple[int, int, str]:
        """(id, version, schema) of the subject's latest version."""
        answer = self._call("GET", f"/subjects/{_quote(subject)}/versions/latest")
        return int(answer["id"]), int(answer["version"]), str(answer["schema"])

    def set_compatibility(self, level: str, subject: str | None = None) -> None:
        """Set the compatibility level of one subject, or the global one when ``subject`` is None."""
        path = "/config" if subject is None else f"/config/{_quote(subject)}"
        self._call("PUT", path, {"compatibility": level})

    def check_compatibility(self, subject: str, schema: dict[str, Any] | str) -> bool:
        """Whether ``schema`` may be registered after the subject's latest version."""
        try:
            answer = self._call(
                "POST", f"/compatibility/subjects/{_quote(subject)}/versions/latest", {"schema": _text(schema)},
            )
        except RegistryRequestFailed as exc:
            # Older Confluent releases answer 404 for a subject with no versions,
            # where anything may be registered.
            if exc.error_code == _SUBJECT_NOT_FOUND:
                return True
            raise
        return bool(answer["is_compatible"])

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        request = urllib.request.Request(url, method=method, headers={"Accept": _ACCEPT})
        if self._authorization:
            request.add_header("Authorization", self._authorization)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            request.add_header("Content-Type", _CONTENT_TYPE)
        try:
            with urllib.request.urlopen(request, data=data, timeout=self.timeout, context=self._ssl) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raise _failure(exc.code, exc.read()) from None
        except urllib.error.URLError as exc:
            raise RegistryUnavailable(self.base_url, exc.reason) from None
        except (TimeoutError, ConnectionError) as exc:
            raise RegistryUnavailable(self.base_url, exc) from None
        try:
            return json.loads(payload)
        except ValueError:
            raise _failure(status, payload) from None


def _failure(status: int, payload: bytes) -> RegistryRequestFailed:
    try:
        answer = json.loads(payload)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        code = answer.get("error_code")
        return RegistryRequestFailed(status, code if isinstance(code, int) else None, str(answer.get("message")))
    # A proxy or a server that is not a registry; a short excerpt is enough to tell which.
    return RegistryRequestFailed(status, None, payload[:200].decode("utf-8", "replace"))


def _text(schema: dict[str, Any] | str) -> str:
    return schema if isinstance(schema, str) else json.dumps(schema)


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")
