"""`ledger config check`: the effective configuration, secrets masked, and a production gate.

Every setting is printed with where it came from (the environment or the default); secrets
(the signing key's text, a database password) never are. Settings that are unsafe in
production are *refused* (exit 1): no signing key, demo mode, browsers from any origin
(``LEDGER_CORS_ORIGINS=["*"]``), key files readable by others or missing. Weaker choices
are *warnings*: no witnesses, no master key (personal data refused), a plain-text database
connection to another host.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pydantic import SecretStr

from ledger.keys import load_signer
from ledger.settings import Settings

__all__ = ["ConfigReport", "check_settings", "describe_settings", "mask_url"]

_LOOPBACK = {"localhost", "127.0.0.1", "::1", None, ""}


@dataclass
class ConfigReport:
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refusals


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``****``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:****@{host}{port}"))


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return "**** (set)"
    if name == "database_url":
        return mask_url(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(str(getattr(v, "url", v)) for v in value) + "]"
    return str(value)


def describe_settings(settings: Settings) -> list[tuple[str, str, str, str]]:
    """(variable, shown value, source, description) for every setting."""
    rows = []
    for name, info in Settings.model_fields.items():
        variable = f"LEDGER_{name.upper()}"
        source = "environment" if name in settings.model_fields_set else "default"
        rows.append(
            (variable, _shown(name, getattr(settings, name)), source, info.description or "")
        )
    return rows


def _key_file(path: Path | None, what: str, report: ConfigReport) -> None:
    if path is None:
        return
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        report.refusals.append(f"the {what} file {path} cannot be read: {exc.strerror}")
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        report.refusals.append(
            f"the {what} file {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"chmod 600 {path}"
        )


def check_settings(settings: Settings) -> ConfigReport:
    """What is unsafe (refusals) or weak (warnings) about ``settings`` in production."""
    report = ConfigReport()
    if settings.demo:
        report.refusals.append(
            "LEDGER_DEMO is on: the log is signed with a throwaway key kept in the data "
            "directory; set LEDGER_DEMO=0 and LEDGER_SIGNING_KEY_FILE"
        )
    elif settings.signing_key_file is None and settings.signing_key is None:
        report.refusals.append(
            "no signing key: create one with `ledger keys init --out FILE` and set "
            "LEDGER_SIGNING_KEY_FILE"
        )
    _key_file(settings.signing_key_file, "signing key", report)
    _key_file(settings.master_key_file, "master key", report)
    if not report.refusals and not settings.demo:
        try:
            load_signer(settings)
        except Exception as exc:
            report.refusals.append(f"the signing key does not load: {exc}")
    if "*" in settings.cors_origins:
        report.refusals.append(
            'LEDGER_CORS_ORIGINS allows any origin ("*"); name the origins that may read '
            "the API from a browser"
        )
    for origin in settings.cors_origins:
        if origin != "*" and not origin.startswith("https://"):
            report.warnings.append(f"CORS origin {origin} is not https://")
    if not settings.witnesses:
        report.warnings.append(
            "no witnesses (LEDGER_WITNESSES): auditors then rely on their own kept "
            "checkpoints alone to detect a rewritten history"
        )
    if settings.master_key_file is None and not settings.demo:
        report.warnings.append(
            "no master key (LEDGER_MASTER_KEY_FILE): personal data (individual attendees, "
            "sponsors, respondents) will be refused"
        )
    if settings.database_url:
        parts = urlsplit(settings.database_url)
        mode = parse_qs(parts.query).get("sslmode", [os.environ.get("PGSSLMODE", "")])[0]
        if parts.hostname not in _LOOPBACK and mode not in ("require", "verify-ca", "verify-full"):
            report.warnings.append(
                f"the database at {parts.hostname} is reached without sslmode=require or stronger"
            )
    if settings.write_rate == 0:
        report.warnings.append("LEDGER_WRITE_RATE=0: tokens have no write budget")
    if settings.public_url is None:
        report.warnings.append(
            "no public URL (LEDGER_PUBLIC_URL): feeds and the audit page link to the address "
            "the server listens on, which behind a proxy is not the one readers use"
        )
    elif not settings.public_url.startswith("https://"):
        report.warnings.append(f"LEDGER_PUBLIC_URL {settings.public_url} is not https://")
    return report
