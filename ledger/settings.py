"""One settings object, read from ``LEDGER_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "WitnessConfig"]


class WitnessConfig(BaseModel):
    """A C2SP tlog-witness the log submits its checkpoints to."""

    url: str
    key: str


class Settings(BaseSettings):
    """Where the ledger lives and what it is called.

    ``LEDGER_DATABASE_URL`` (``postgresql://user:pass@host:port/db``) selects PostgreSQL;
    without it the ledger is one SQLite file, ``ledger.sqlite3``, in ``LEDGER_DATA_DIR``.
    """

    model_config = SettingsConfigDict(env_prefix="LEDGER_", frozen=True, extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql://user:pass@host:port/db; unset means SQLite in LEDGER_DATA_DIR",
    )
    data_dir: Path = Field(
        default=Path("ledger-data"), description="where the SQLite file ledger.sqlite3 lives"
    )
    log_name: str = Field(
        default="localhost/open-policy-ledger",
        description="the log's name: the checkpoint origin and the signing key's name",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s@]+(/[^?#\s]*)?$",
        description="the service's public base URL (e.g. https://ledger.example.gov.uk) for "
        "absolute links in feeds and the audit page; unset: the address the server listens "
        "on, never a request's Host header",
    )
    sqlite_lock_timeout: int = Field(
        default=30, ge=1, description="seconds a writer waits for SQLite's write lock"
    )
    pg_pool_size: int = Field(default=4, ge=1, description="PostgreSQL connections per process")
    pg_schema: str = Field(default="public", description="PostgreSQL schema holding the tables")
    signing_key_file: Path | None = Field(
        default=None,
        description="the log's Ed25519 private key file (`ledger keys init`; mode 0600)",
    )
    signing_key: SecretStr | None = Field(
        default=None, description="the same key's text, e.g. from a secret store (never printed)"
    )
    # The master key that wraps each person's data key (ledger.vault): 32 random bytes,
    # base64, in a file outside the database (`ledger keys init-master --out FILE`).
    master_key_file: Path | None = Field(
        default=None,
        description="the personal-data master key file (`ledger keys init-master`; mode "
        "0600); unset refuses personal data",
    )
    demo: bool = Field(
        default=False,
        description="a throwaway key in the data directory: for demos, never production",
    )
    witnesses: list[WitnessConfig] = Field(
        default=[],
        description='JSON list of {"url": ..., "key": <witness vkey>} to submit checkpoints to',
    )
    witness_timeout: float = Field(
        default=5.0, gt=0, description="seconds to wait for each witness"
    )
    max_json_body: int = Field(
        default=1_048_576, ge=1024, description="largest JSON request body, bytes"
    )
    max_document: int = Field(
        default=26_214_400, ge=1024, description="largest uploaded document, bytes"
    )
    write_rate: float = Field(
        default=20.0,
        ge=0,
        description="each token's writes a second, per API process (0: no limit)",
    )
    write_burst: int = Field(default=100, ge=1, description="each token's burst of writes")
    read_cache_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="bytes of public answers each API process caches (0 turns it off)",
    )
    api_threads: int = Field(
        default=8, ge=1, description="threads per API worker (each holds ~3 database connections)"
    )
    group_commit_max: int = Field(
        default=128, ge=1, description="most commands written together in one transaction"
    )
    aggregate_cache: int = Field(
        default=256,
        ge=0,
        description="records each process keeps between commands, brought up to date "
        "from the log on each use (0 turns it off)",
    )
    cors_origins: list[str] = Field(
        default=[],
        description='JSON list of origins allowed to read the public API from browsers; "*" '
        "is refused in production",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="json: one JSON object a line (with request ids); text: for humans",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="the least severe log level written"
    )
    access_log: bool = Field(default=True, description="log one line per HTTP request")
    metrics: bool = Field(
        default=True,
        description="serve Prometheus metrics at /metrics (restrict it at the proxy if needed)",
    )
    verify_max_checkpoint_age_seconds: int = Field(
        default=86_400,
        ge=0,
        description="a page's Verify warns when the checkpoint it checked is older, by more "
        "than these seconds of log time, than the latest one the reader's browser has seen",
    )

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "postgresql" if self.database_url else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "ledger.sqlite3"

    def describe_store(self) -> str:
        """Where the log is, for messages, without any password."""
        if self.database_url:
            from urllib.parse import urlsplit

            parts = urlsplit(self.database_url)
            return f"postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"
        return str(self.sqlite_path)
