"""Operating the service: Prometheus metrics, structured request logs with request ids.

``/metrics`` (Prometheus text format, one registry per app — no global state):

* ``ledger_entries_appended_total`` and ``ledger_append_seconds`` (histogram): entries this
  process appended and how long each command took to commit, receipt included;
* ``ledger_log_size``, ``ledger_checkpoint_age_seconds`` (since the latest checkpoint was
  signed: the time of its last entry, which commits with it);
* ``ledger_witness_cosignature_age_seconds{witness}``: since the newest cosignature of each
  configured witness on the latest checkpoint (absent when it has none);
* ``ledger_projection_lag_entries{view}``: entries each read model trails the log by;
* ``ledger_last_verify_ok``, ``ledger_last_verify_timestamp_seconds``,
  ``ledger_last_verify_entries``: the last `ledger verify` run against this store;
* ``ledger_http_requests_total{method,route,status}`` and ``ledger_http_request_seconds``.

Request logs: one JSON object a line (``LEDGER_LOG_FORMAT=json``), with a request id taken
from a well-formed ``X-Request-ID`` or made here, echoed in the response. Never a header
value, a body or a query string's secrets: the path is logged without its query.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.checkpoint import CosignatureVerifier, verify_cosignatures
from ledger.settings import Settings

__all__ = [
    "JsonFormatter",
    "Metrics",
    "RequestLog",
    "TextFormatter",
    "configure_logging",
    "escape_controls",
    "startup_line",
]

log = logging.getLogger("ledger.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"))
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and any ``extra`` fields."""

    _SKIP = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._SKIP and key not in document and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


# C0 and C1 controls, DEL and the Unicode line and paragraph separators: anything a
# terminal or a log reader could take as the end of a line or a command.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """Readable lines for humans (``LEDGER_LOG_FORMAT=text``). Control characters in any
    logged value (a URL path, say) are escaped, so one record is one line and no value can
    forge another; a traceback follows on lines of its own, each indented."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:  # noqa: N802
        text = super().formatException(ei)
        return "\n".join("    " + escape_controls(line) for line in text.splitlines())

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return "\n".join("    " + escape_controls(line) for line in stack_info.splitlines())


def configure_logging(settings: Settings) -> None:
    """Send the ``ledger`` loggers to stderr in the configured format and level."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger("ledger")
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    root.propagate = False


def startup_line(settings: Settings, *, version: str, key_id: str, origin: str) -> str:
    """The one line a process logs when it starts serving."""
    return (
        f"open-policy-ledger {version} serving {settings.describe_store()} "
        f"({settings.backend}); log {origin}; key id {key_id}"
    )


class Metrics:
    """The app's metrics (its own registry); ``render()`` gives the exposition text."""

    def __init__(self, app_state: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.appended = Counter(
            "ledger_entries_appended",
            "Entries this process appended to the log",
            registry=self.registry,
        )
        self.append_seconds = Histogram(
            "ledger_append_seconds",
            "Time to decide and commit one command, receipt included",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "ledger_http_request_seconds",
            "Time to answer an HTTP request",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LedgerCollector(app_state))

    def observe_append(self, entries: int, seconds: float) -> None:
        self.appended.inc(entries)
        self.append_seconds.observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _LedgerCollector(Collector):
    """Gauges read from the store at scrape time (so every replica reports the same log)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterable[Metric]:
        state = self.state
        settings: Settings = state.settings
        now = time.time()
        size = GaugeMetricFamily("ledger_log_size", "Entries in the log")
        age = GaugeMetricFamily(
            "ledger_checkpoint_age_seconds", "Seconds since the latest checkpoint was signed"
        )
        witness_age = GaugeMetricFamily(
            "ledger_witness_cosignature_age_seconds",
            "Seconds since each witness's newest cosignature on the latest checkpoint",
            labels=["witness"],
        )
        lag = GaugeMetricFamily(
            "ledger_projection_lag_entries",
            "Entries each read model trails the log by",
            labels=["view"],
        )
        up = GaugeMetricFamily("ledger_store_up", "1 when the store answered this scrape")
        try:
            reader = state.readers.get()
            head = reader.head()
            log_size = head.size if head is not None else 0
            size.add_metric([], log_size)
            if log_size:
                last = orjson.loads(reader.entries(log_size - 1, log_size)[0])
                signed = datetime.fromisoformat(last["time"].replace("Z", "+00:00"))
                age.add_metric([], max(0.0, now - signed.timestamp()))
                found = reader.checkpoint(None)
                if found is not None and settings.witnesses:
                    verifiers = [CosignatureVerifier.from_vkey(w.key) for w in settings.witnesses]
                    for name, stamp in verify_cosignatures(found[2], verifiers, 0).items():
                        witness_age.add_metric([name], max(0.0, now - stamp))
            runner = state.read_models.get().runner
            for view, position in sorted(runner.positions().items()):
                lag.add_metric([view], max(0, log_size - position))
            up.add_metric([], 1)
        except Exception:  # a scrape must answer even when the database does not
            log.warning("metrics: the store did not answer", exc_info=True)
            up.add_metric([], 0)
        yield size
        yield age
        yield witness_age
        yield lag
        yield up
        yield from _last_verification(state)


def _last_verification(state: Any) -> Iterable[Metric]:
    ok = GaugeMetricFamily("ledger_last_verify_ok", "1 if the last `ledger verify` passed")
    when = GaugeMetricFamily(
        "ledger_last_verify_timestamp_seconds", "When the last `ledger verify` finished"
    )
    entries = GaugeMetricFamily(
        "ledger_last_verify_entries", "Entries the last `ledger verify` checked"
    )
    try:
        last = state.side.last_verification()
    except Exception:
        last = None
    if last is not None:
        ok.add_metric([], 1 if last.ok else 0)
        when.add_metric([], last.finished.timestamp())
        entries.add_metric([], last.size)
    yield ok
    yield when
    yield entries


class RequestLog:
    """Pure ASGI middleware: a request id for every request, metrics and one log line."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics | None, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                # Every answer, including FastAPI's own /docs and /redoc pages: no framing,
                # no MIME sniffing (pages of ours also carry a strict CSP).
                names = {name.lower() for name, _ in headers}
                for name, value in _ALWAYS:
                    if name not in names:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            # Answers from the read cache never reach the router: one label for them all.
            template = getattr(route, "path", None) or "cached-or-unmatched"
            if self.metrics is not None:
                self.metrics.requests.labels(scope["method"], template, str(status)).inc()
                self.metrics.request_seconds.observe(seconds)
            if self.access_log and log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round(seconds * 1000, 2),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
