"""TLS contexts from the settings: the control plane's API serves HTTPS, the CLI trusts a CA bundle.

    server_context(settings)   # GSP_TLS_CERT + GSP_TLS_KEY, else None (plain HTTP)
    client_context(settings)   # verifying, trusting GSP_TLS_CA; None: the system's trust store

A certificate or key that is unset, missing or unloadable is a one-line `UserError` naming the
variable and the file, raised before anything is served rather than on the first handshake.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from gsp.errors import UserError
from schemas.settings import Settings

__all__ = ["client_context", "server_context"]


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """A TLS 1.2+ server context of GSP_TLS_CERT and GSP_TLS_KEY; None when neither is set."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = ("GSP_TLS_CERT", "GSP_TLS_KEY") if key is None else ("GSP_TLS_KEY", "GSP_TLS_CERT")
        raise UserError(f"{given} is set but {missing} is not; HTTPS needs both the certificate and its key")
    cert_text, key_text = _read("GSP_TLS_CERT", cert), _read("GSP_TLS_KEY", key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # The password callback stops OpenSSL prompting on the terminal for an encrypted key.
        context.load_cert_chain(str(cert), str(key), password=lambda: _encrypted(key))
    except ssl.SSLError as exc:
        if "-----BEGIN CERTIFICATE-----" not in cert_text:
            raise UserError(f"GSP_TLS_CERT={cert} holds no PEM certificate") from None
        if "PRIVATE KEY-----" not in key_text:
            raise UserError(f"GSP_TLS_KEY={key} holds no PEM private key") from None
        raise UserError(f"GSP_TLS_CERT={cert} and GSP_TLS_KEY={key} do not load as a certificate "
                        f"and its key: {_reason(exc)}") from None
    return context


def client_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS 1.2+ client context trusting GSP_TLS_CA; None when unset (the system's trust store)."""
    ca = settings.tls_ca
    if ca is None:
        return None
    _read("GSP_TLS_CA", ca)
    try:
        context = ssl.create_default_context(cafile=str(ca))
    except ssl.SSLError as exc:
        raise UserError(f"GSP_TLS_CA={ca} is not a PEM CA bundle: {_reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _read(variable: str, path: Path) -> str:
    """The file's text, or a one-line error naming the variable: missing, a directory, unreadable."""
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise UserError(f"{variable}={path}: {exc.strerror or exc}") from None


def _encrypted(key: Path) -> bytes:
    raise UserError(f"GSP_TLS_KEY={key} is encrypted; give the server an unencrypted PEM key")


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc).splitlines()[0]
