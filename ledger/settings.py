"""One settings object, read from ``LEDGER_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr
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

    database_url: str | None = None
    data_dir: Path = Path("ledger-data")
    log_name: str = "localhost/open-policy-ledger"
    sqlite_lock_timeout: int = 30
    pg_pool_size: int = 4
    pg_schema: str = "public"
    signing_key_file: Path | None = None
    signing_key: SecretStr | None = None
    # The master key that wraps each person's data key (ledger.vault): 32 random bytes,
    # base64, in a file outside the database (`ledger keys init-master --out FILE`).
    master_key_file: Path | None = None
    demo: bool = False
    # Witnesses to submit every checkpoint to: a JSON list of {"url": …, "key": <vkey>}.
    witnesses: list[WitnessConfig] = []
    witness_timeout: float = 5.0
    # The HTTP API: body limits (bytes) and each token's write budget (writes a second, burst).
    max_json_body: int = 1_048_576
    max_document: int = 26_214_400
    write_rate: float = 20.0
    write_burst: int = 100
    # Bytes of serialised public answers each API process keeps (0 turns the cache off).
    read_cache_bytes: int = 64 * 1024 * 1024
    # Threads each API worker runs routes in (each holds a few database connections).
    api_threads: int = 8
    # Commands arriving together are written in one transaction, up to this many.
    group_commit_max: int = 128

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
