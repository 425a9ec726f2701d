"""Configuration from environment variables (and a ``.env`` file): see ``docs/configuration.md``."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import load_dotenv

from core.errors import ConfigError


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None


def _timezone(name: str, default: str) -> str:
    from zoneinfo import available_timezones

    raw = os.environ.get(name) or default
    if raw not in available_timezones():
        raise ConfigError(f"{name}: expected an IANA time zone name such as Asia/Shanghai, got {raw!r}")
    return raw


def _secret(data_dir: Path) -> str:
    """The signing secret: from the environment, else one kept in the data dir (embedded default)."""
    if os.environ.get("CRM_SECRET_KEY"):
        return os.environ["CRM_SECRET_KEY"]
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def configured_database_url(env_file: str | None = ".env") -> str:
    """``CRM_DATABASE_URL`` (environment, else ``.env``), else the SQLite file in ``CRM_DATA_DIR``: what
    :meth:`Settings.from_env` uses, without its side effects (a secret key file written)."""
    if env_file and Path(env_file).exists():
        load_dotenv(env_file, override=False)
    data_dir = Path(os.environ.get("CRM_DATA_DIR", "var")).resolve()
    return os.environ.get("CRM_DATABASE_URL") or f"sqlite:///{data_dir / 'crm.sqlite3'}"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str | None
    secret_key: str
    base_url: str = "http://127.0.0.1:8000"
    default_language: str = "en"
    default_region: str = "CN"
    #: the IANA time zone dates and times are shown in for users who have not chosen one
    default_timezone: str = "Asia/Shanghai"
    session_idle_minutes: int = 120
    session_absolute_hours: int = 24
    login_max_failures: int = 5
    login_window_seconds: int = 900
    job_threads: int = 4
    db_pool_size: int = 10
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "crm@localhost"
    #: addresses (or networks) of the reverse proxies whose X-Forwarded-For / -Proto uvicorn believes; the
    #: client address behind them keys login throttling and is written to the audit log
    forwarded_allow_ips: str = "127.0.0.1"
    #: the largest request body any endpoint reads (a file upload included); larger ones get 413
    max_request_mb: int = 64
    #: networks (comma-separated, e.g. ``127.0.0.1/32,10.1.0.0/16``) webhooks may reach although private or
    #: loopback; any other private, loopback, link-local or reserved target is refused
    webhook_allow_networks: str = ""
    #: failed attempts in a row after which a webhook subscription is disabled and its owner told
    webhook_max_failures: int = 10
    webhook_timeout_seconds: int = 10
    #: ``amqp://…``: jobs go through RabbitMQ (durable queues) instead of Redis
    rabbitmq_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def broker_url(self) -> str | None:
        """Where jobs go: RabbitMQ when ``CRM_RABBITMQ_URL`` is set, else Redis, else in-process (None)."""
        return self.rabbitmq_url or self.redis_url

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env_file: str | None = ".env") -> Settings:
        database_url = configured_database_url(env_file)
        data_dir = Path(os.environ.get("CRM_DATA_DIR", "var")).resolve()
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            redis_url=os.environ.get("CRM_REDIS_URL") or None,
            secret_key=_secret(data_dir),
            base_url=os.environ.get("CRM_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            default_language=os.environ.get("CRM_LANGUAGE", "en"),
            default_region=os.environ.get("CRM_DEFAULT_REGION", "CN"),
            default_timezone=_timezone("CRM_TIMEZONE", "Asia/Shanghai"),
            session_idle_minutes=_int("CRM_SESSION_IDLE_MINUTES", 120),
            session_absolute_hours=_int("CRM_SESSION_ABSOLUTE_HOURS", 24),
            db_pool_size=_int("CRM_DB_POOL_SIZE", 10),
            login_max_failures=_int("CRM_LOGIN_MAX_FAILURES", 5),
            login_window_seconds=_int("CRM_LOGIN_WINDOW_SECONDS", 900),
            job_threads=_int("CRM_JOB_THREADS", 4),
            smtp_host=os.environ.get("CRM_SMTP_HOST") or None,
            smtp_port=_int("CRM_SMTP_PORT", 25),
            smtp_from=os.environ.get("CRM_SMTP_FROM", "crm@localhost"),
            forwarded_allow_ips=(os.environ.get("CRM_FORWARDED_ALLOW_IPS") or os.environ.get("FORWARDED_ALLOW_IPS")
                                 or "127.0.0.1"),
            max_request_mb=_int("CRM_MAX_REQUEST_MB", 64),
            webhook_allow_networks=os.environ.get("CRM_WEBHOOK_ALLOW_NETWORKS", ""),
            webhook_max_failures=_int("CRM_WEBHOOK_MAX_FAILURES", 10),
            webhook_timeout_seconds=_int("CRM_WEBHOOK_TIMEOUT_SECONDS", 10),
            rabbitmq_url=os.environ.get("CRM_RABBITMQ_URL") or None,
            extra={k: v for k, v in os.environ.items() if k.startswith("CRM_X_")},
        )
