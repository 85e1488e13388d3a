"""One frozen settings object per process, read once from the environment.

Every process of the platform (control plane, connectors, stream workers, sinks)
reads the same variables, so an ops team configures a deployment in one place.
Each field: type, default, one line of documentation, its variable name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

__all__ = ["ADMIN_TOKEN_FILE", "Settings", "SettingsError", "kafka_consumer_config", "kafka_producer_config", "settings"]


ADMIN_TOKEN_FILE = "admin.token"  # in GSP_HOME, mode 0600: the first gsp serve writes the admin credential there


class SettingsError(ValueError):
    """A variable has a value that cannot be used."""


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{name}={raw!r} is not true or false")
    return raw.lower() in ("true", "1", "yes")


def _dates(name: str) -> tuple[str, ...]:
    raw = _env(name)
    if raw is None:
        return ()
    out = tuple(d.strip() for d in raw.split(",") if d.strip())
    for d in out:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", d):
            raise SettingsError(f"{name}: {d!r} is not a date as YYYY-MM-DD")
    return out


@dataclass(frozen=True, kw_only=True)
class Settings:
    kafka_bootstrap: str | None = field(default=None, metadata={"env": "GSP_KAFKA_BOOTSTRAP", "doc": "Kafka bootstrap servers; unset starts the embedded broker"})
    schema_registry_url: str | None = field(default=None, metadata={"env": "GSP_SCHEMA_REGISTRY_URL", "doc": "Confluent-compatible registry; unset uses the control plane's own"})
    database_url: str = field(default="", metadata={"env": "GSP_DATABASE_URL", "doc": "Control-plane database (SQLAlchemy URL); default SQLite under GSP_HOME"}, repr=False)
    home: Path = field(default=Path(".gsp"), metadata={"env": "GSP_HOME", "doc": "Directory for the embedded database, runtime file and worker state"})
    api_url: str | None = field(default=None, metadata={"env": "GSP_API_URL", "doc": "Control-plane API used by CLI commands; default from the runtime file"})
    replication_factor: int = field(default=1, metadata={"env": "GSP_REPLICATION_FACTOR", "doc": "Replicas of every topic the platform creates (3 on a production cluster)"})
    partitions: int = field(default=4, metadata={"env": "GSP_PARTITIONS", "doc": "Partitions of data topics, fixed when a topic is created"})
    session_timeout_s: int = field(default=6, metadata={"env": "GSP_SESSION_TIMEOUT_S", "doc": "Consumer session timeout; a group join waits about half of it"})
    heartbeat_interval_s: int = field(default=1, metadata={"env": "GSP_HEARTBEAT_INTERVAL_S", "doc": "Consumer heartbeat interval"})
    max_poll_interval_s: int = field(default=60, metadata={"env": "GSP_MAX_POLL_INTERVAL_S", "doc": "Longest pause between polls before a consumer is evicted"})
    linger_ms: int = field(default=5, metadata={"env": "GSP_LINGER_MS", "doc": "Producer linger; small batches are the biggest single throughput win"})
    log_level: str = field(default="info", metadata={"env": "GSP_LOG_LEVEL", "doc": "debug, info, warning or error"})
    app_id: str = field(default="gsp-streams", metadata={"env": "GSP_APP_ID", "doc": "Stream workers' consumer group and Faust app id"})
    worker_web_port: int = field(default=6066, metadata={"env": "GSP_WORKER_WEB_PORT", "doc": "Port of a stream worker's /metrics and /health"})
    linkage_model: str = field(default="", metadata={"env": "GSP_LINKAGE_MODEL", "doc": "Trained linkage model file for the match stage; default the shipped Vietnamese identity model; 'off' disables probabilistic matching"})
    api_port: int = field(default=8780, metadata={"env": "GSP_API_PORT", "doc": "Port of the control plane's HTTP API (registry, subscriptions, /metrics, /health); 0 picks a free one"})
    api_host: str = field(default="127.0.0.1", metadata={"env": "GSP_API_HOST", "doc": "Address the control plane's HTTP API binds; 0.0.0.0 to serve other hosts (a pod behind a Service)"})
    ops_host: str = field(default="127.0.0.1", metadata={"env": "GSP_OPS_HOST", "doc": "Address the workers' and connectors' /metrics and /health bind; 0.0.0.0 for probes and Prometheus from other hosts"})
    datasets_dir: Path | None = field(default=None, metadata={"env": "GSP_DATASETS_DIR", "doc": "Directory of extra dataset declarations (<domain>.<dataset>.json) beside the shipped ones"})
    token: str | None = field(default=None, repr=False, metadata={"env": "GSP_TOKEN", "child": False, "doc": "API token CLI commands send; default the admin token gsp serve wrote to GSP_HOME/admin.token"})
    tls_cert: Path | None = field(default=None, metadata={"env": "GSP_TLS_CERT", "doc": "PEM certificate chain: the control plane's API serves HTTPS with it (needs GSP_TLS_KEY)"})
    tls_key: Path | None = field(default=None, metadata={"env": "GSP_TLS_KEY", "doc": "PEM private key of GSP_TLS_CERT"})
    tls_ca: Path | None = field(default=None, metadata={"env": "GSP_TLS_CA", "doc": "PEM CA bundle CLI commands trust for an https GSP_API_URL; default the system's"})
    answer_days: int = field(default=2, metadata={"env": "GSP_ANSWER_DAYS", "doc": "Working days a data owner has to answer a subscription request"})
    holidays: tuple[str, ...] = field(default=(), metadata={"env": "GSP_HOLIDAYS", "doc": "Public holidays (YYYY-MM-DD, comma-separated) that do not count as working days"})
    public_metrics: bool = field(default=True, metadata={"env": "GSP_PUBLIC_METRICS", "doc": "Serve /metrics without a credential (true, the default; metrics hold no personal data); false: ops role required"})
    ledger_key: str | None = field(default=None, repr=False, metadata={"env": "GSP_LEDGER_KEY", "child": False, "doc": "Hex key that authenticates the audit ledger's heads and keys its person index; default GSP_HOME/ledger.key (made on first start); the same on every control plane of one database"})
    audit_retention_days: int = field(default=3650, metadata={"env": "GSP_AUDIT_RETENTION_DAYS", "doc": "Days the audit ledger keeps an entry (cut at a stored head); 0 keeps every entry"})
    share_dedupe_window: int = field(default=200_000, metadata={"env": "GSP_SHARE_DEDUPE_WINDOW", "doc": "Recent deliveries a stream worker remembers (read back from gsp.ledger after a restart) so that a replayed record is not shared twice; 0 turns it off"})
    worker_stuck_s: int = field(default=120, metadata={"env": "GSP_WORKER_STUCK_S", "doc": "Seconds a stream worker may leave records on its input partitions without committing any, while it declares no wait, before it ends itself (logging every task's stack) to be restarted; 0 never"})
    ledger_head_interval_s: int = field(default=10, metadata={"env": "GSP_LEDGER_HEAD_INTERVAL_S", "doc": "Seconds between stored heads of the audit ledger's chains: at most this much of a chain's tail can be cut unseen"})

    @property
    def embedded(self) -> bool:
        """True when the platform must start its own broker."""
        return self.kafka_bootstrap is None

    def credential(self) -> str | None:
        """The API token this process sends: GSP_TOKEN, else the admin token `gsp serve` wrote to GSP_HOME."""
        if self.token:
            return self.token
        try:
            return (self.home / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'control.db'}"

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("GSP_HOME") or ".gsp")
        level = (_env("GSP_LOG_LEVEL") or "info").lower()
        if level not in {"debug", "info", "warning", "error"}:
            raise SettingsError(f"GSP_LOG_LEVEL={level!r} is not one of debug, info, warning, error")
        return cls(
            kafka_bootstrap=_env("GSP_KAFKA_BOOTSTRAP"),
            schema_registry_url=_env("GSP_SCHEMA_REGISTRY_URL"),
            database_url=_env("GSP_DATABASE_URL") or "",
            home=home,
            api_url=_env("GSP_API_URL"),
            partitions=_int("GSP_PARTITIONS", 4),
            replication_factor=_int("GSP_REPLICATION_FACTOR", 1),
            session_timeout_s=_int("GSP_SESSION_TIMEOUT_S", 6),
            heartbeat_interval_s=_int("GSP_HEARTBEAT_INTERVAL_S", 1),
            max_poll_interval_s=_int("GSP_MAX_POLL_INTERVAL_S", 60),
            linger_ms=_int("GSP_LINGER_MS", 5),
            log_level=level,
            app_id=_env("GSP_APP_ID") or "gsp-streams",
            worker_web_port=_int("GSP_WORKER_WEB_PORT", 6066),
            api_port=_int("GSP_API_PORT", 8780),
            linkage_model=_env("GSP_LINKAGE_MODEL") or "",
            api_host=_env("GSP_API_HOST") or "127.0.0.1",
            ops_host=_env("GSP_OPS_HOST") or "127.0.0.1",
            datasets_dir=Path(d) if (d := _env("GSP_DATASETS_DIR")) else None,
            token=_env("GSP_TOKEN"),
            tls_cert=Path(c) if (c := _env("GSP_TLS_CERT")) else None,
            tls_key=Path(k) if (k := _env("GSP_TLS_KEY")) else None,
            tls_ca=Path(a) if (a := _env("GSP_TLS_CA")) else None,
            answer_days=_int("GSP_ANSWER_DAYS", 2),
            holidays=_dates("GSP_HOLIDAYS"),
            public_metrics=_bool("GSP_PUBLIC_METRICS", True),
            ledger_key=_env("GSP_LEDGER_KEY"),
            audit_retention_days=_int("GSP_AUDIT_RETENTION_DAYS", 3650),
            ledger_head_interval_s=_int("GSP_LEDGER_HEAD_INTERVAL_S", 10),
            share_dedupe_window=_int("GSP_SHARE_DEDUPE_WINDOW", 200_000),
            worker_stuck_s=_int("GSP_WORKER_STUCK_S", 120),
        )

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, for a child process (unset fields omitted)."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, "", ()) or not f.metadata.get("child", True):
                continue  # a credential is not handed down
            env[f.metadata["env"]] = ",".join(value) if isinstance(value, tuple) else str(value)
        return env

    @staticmethod
    def documentation() -> list[tuple[str, str]]:
        """(variable, doc) for every setting, for `gsp settings`."""
        return [(f.metadata["env"], f.metadata["doc"]) for f in fields(Settings)]


@cache
def settings() -> Settings:
    """The process's settings, read once."""
    return Settings.from_env()


def kafka_consumer_config(settings: Settings, bootstrap: str) -> dict[str, object]:
    """kafka-python consumer settings; short session timeouts make a group join take seconds."""
    return {
        "bootstrap_servers": bootstrap,
        "session_timeout_ms": settings.session_timeout_s * 1000,
        "heartbeat_interval_ms": settings.heartbeat_interval_s * 1000,
        "max_poll_interval_ms": settings.max_poll_interval_s * 1000,
    }


def kafka_producer_config(settings: Settings, bootstrap: str) -> dict[str, object]:
    """kafka-python producer settings: acks from all in-sync replicas, small linger for batching."""
    # Not idempotent: kafka-python's idempotent producer (its default since 3.0) fails for good once a restarted
    # embedded broker has forgotten its producer id; at-least-once with stable event ids is the contract anyway.
    return {"bootstrap_servers": bootstrap, "acks": "all", "linger_ms": settings.linger_ms, "retries": 5,
            "enable_idempotence": False, "max_block_ms": 10_000}
