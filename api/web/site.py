"""What every page of the website shares: templates, the log position a page reflects, links
that keep ``as_of``, names for ids, labels for codes, paging, and HTML error pages.

Pages read the same read models as the JSON API (``app.state.read_models``) and never
anything the public API does not already show.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from api.errors import ProblemError
from api.routes.public import parse_as_of
from ledger.errors import InvalidInputError, LedgerError, NotFoundError, StorageError
from ledger.storage import LogReader
from projections import process as process_view
from projections.reader import KEY_SHAPES, CursorError, ReadModels, decode_cursor, encode_cursor
from projections.runner import ViewTimeoutError

__all__ = [
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "Names",
    "PageError",
    "Paging",
    "StaticAssets",
    "View",
    "clean_id",
    "clean_int",
    "clean_param",
    "error_page",
    "every",
    "format_date",
    "format_datetime",
    "format_size",
    "html_errors",
    "humanise",
    "label",
    "not_found",
    "public_base_url",
    "render",
    "snippet",
    "static_url",
    "templates",
    "url_segment",
]

log = logging.getLogger("api.web")

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

PAGE_SIZE = 50
"""Items on one page of a list."""

_MAX_PARAM = 500  # characters of any query parameter a page accepts
_MAX_ID = 200  # characters of an id in a path

# Pages allow only their own scripts, styles and connections: nothing inline, nothing
# from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",  # frame-ancestors 'none' for browsers without CSP level 2
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class StaticAssets(StaticFiles):
    """``/static``: the site's CSS and JavaScript, never sniffed as another type."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


# Labels ------------------------------------------------------------------------------------

STATUS_LABELS = {
    "draft": "Draft",
    "discussion": "In discussion",
    "consultation": "In consultation",
    "revised": "Revised",
    "recommended": "Recommended",
    "enacted": "Enacted",
    "withdrawn": "Withdrawn",
    "superseded": "Superseded",
}
STATUSES = tuple(STATUS_LABELS)

DISCLOSURE_LABELS = {
    "on_record": "On the record",
    "non_attributed": "Non-attributed",
    "chatham_house": "Chatham House Rule",
    "private": "Private",
}
DISCLOSURE_NOTES = {
    "on_record": "Who attended and who said what is published.",
    "non_attributed": "Who attended is published; outcomes are not attributed to anyone.",
    "chatham_house": "Neither who attended nor who said what is published.",
    "private": "Neither who attended nor who said what is published.",
}

UNATTRIBUTED_MEETING = {
    "non_attributed": "a meeting held on a non-attributed basis",
    "chatham_house": "a meeting held under the Chatham House Rule",
    "private": "a private meeting",
}
"""What pages and feeds say instead of an organisation's name for what was raised, decided
or dissented at a meeting that attributes no one (also for older entries that named one)."""

DECISION_LABELS = {
    "agreed": "Agreed",
    "disagreed": "Not agreed",
    "withdrawn": "Withdrawn",
    "no_decision": "No decision yet",
}
CONSENSUS_LABELS = {
    "banked": "Consensus banked",
    "still_to_discuss": "Still to discuss",
    "options": "Options set out",
}
ORG_KIND_LABELS = {
    "department": "Government department",
    "public_body": "Public body",
    "local_authority": "Local authority",
    "civil_society": "Civil society",
    "academic": "Academic",
    "business": "Business",
    "advisory_group": "Advisory group",
}
PUB_KIND_LABELS = {
    "meeting_note": "Meeting note",
    "proposal_paper": "Proposal paper",
    "consultation": "Consultation",
    "consultation_response": "Consultation response",
    "report": "Report",
    "code_of_practice": "Code of practice",
    "minutes": "Minutes",
}
STATE_LABELS = {
    "published": "Published",
    "embargoed": "Embargoed",
    "withdrawn": "Withdrawn",
    "superseded": "Superseded",
}
ITEM_KIND_LABELS = {
    "agreement": "Agreement",
    "disagreement": "Disagreement",
    "option": "Option",
    "action": "Action",
    "decision": "Decision",
    "note": "Note",
}
ENTRY_LABELS = {
    "process.started": "Process started",
    "process.strand_added": "Strand added",
    "process.phase_started": "Phase started",
    "organisation.registered": "Organisation registered",
    "organisation.membership_added": "Membership added",
    "organisation.membership_ended": "Membership ended",
    "proposal.tabled": "Proposal tabled",
    "proposal.amendment_proposed": "Amendment proposed",
    "proposal.amendment_decided": "Amendment decided",
    "proposal.revised": "Proposal revised",
    "proposal.status_changed": "Status changed",
    "proposal.legislative_outcome_linked": "Legislative outcome linked",
    "meeting.scheduled": "Meeting scheduled",
    "meeting.held": "Meeting held",
    "meeting.held_in_confidence": "Meeting held (attendance in confidence)",
    "meeting.outcome_recorded": "Meeting outcome recorded",
    "meeting.minutes_agreed": "Minutes agreed",
    "publication.published": "Document published",
    "publication.embargoed": "Publication embargoed",
    "publication.prerelease_access_granted": "Pre-release access granted",
    "publication.released": "Embargoed document released",
    "publication.withdrawn": "Publication withdrawn",
    "publication.superseded": "Publication superseded",
    "correction.recorded": "Correction recorded",
    "log.key_rotated": "Log key rotated",
    "meeting.held_with_people": "Meeting held",
    "proposal.individual_sponsor_recorded": "Individual sponsor recorded",
    "person.erased": "Personal data erased",
    "access_token.issued": "Official API token issued",
    "access_token.revoked": "Official API token revoked",
    "consultation.opened": "Consultation opened",
    "consultation.response_received": "Consultation response received",
    "consultation.closed": "Consultation closed",
    "consultation.review_recorded": "Consultation review recorded",
    "consultation.government_responded": "Government response to a recommendation",
}


def humanise(code: Any) -> str:
    """A code such as ``still_to_discuss`` as words: "Still to discuss"."""
    text = str(code or "").replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def label(value: Any, table: Mapping[str, str]) -> str:
    return table.get(str(value), humanise(value))


_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?")


def _moment(value: Any) -> datetime | None:
    found = _TIME.match(str(value or ""))
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(p) if p else 0 for p in found.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def format_date(value: Any) -> str:
    """``2014-10-08T13:06:00Z`` → "8 October 2014" (the value itself when not a time)."""
    moment = _moment(value)
    if moment is None:
        return str(value or "")
    return f"{moment.day} {moment:%B %Y}"


def format_datetime(value: Any) -> str:
    """``2014-10-08T13:06:00Z`` → "8 October 2014, 13:06 UTC"."""
    moment = _moment(value)
    if moment is None:
        return str(value or "")
    return f"{moment.day} {moment:%B %Y}, {moment:%H:%M} UTC"


def format_size(value: Any) -> str:
    """A byte count for people: "1,163 bytes (1.1 kB)"."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        return str(value)
    words = f"{size:,} byte{'s' if size != 1 else ''}"
    if size >= 1_000_000:
        return f"{words} ({size / 1_000_000:.1f} MB)"
    if size >= 1_000:
        return f"{words} ({size / 1_000:.1f} kB)"
    return words


def snippet(value: Any) -> Markup:
    """A search snippet, escaped, with its ``«matched»`` words in ``<mark>``."""
    escaped = str(escape(str(value or "")))
    return Markup(escaped.replace("«", "<mark>").replace("»", "</mark>"))  # noqa: S704


def _static_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for path in STATIC_DIR.glob("*"):
        if path.is_file():
            versions[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return versions


_STATIC = _static_versions()


def url_segment(value: Any) -> str:
    """One path segment, percent-encoded (``/`` too): ids recorded before they had to be
    slugs may hold anything. The ``segment`` filter of every template."""
    return quote(str(value), safe="")


def public_base_url(request: Request) -> str:
    """The base of absolute links (feeds, the audit page): ``LEDGER_PUBLIC_URL``, or when it
    is unset the address this server listens on. Never the request's ``Host`` header, which
    the client chooses."""
    configured = request.app.state.settings.public_url
    if configured:
        return str(configured).rstrip("/")
    scheme = "https" if request.scope.get("scheme") == "https" else "http"
    server = request.scope.get("server") or ("127.0.0.1", None)
    host, port = str(server[0]), server[1]
    if ":" in host:
        host = f"[{host}]"
    default_port = port is None or (scheme, port) in (("http", 80), ("https", 443))
    return f"{scheme}://{host}" + ("" if default_port else f":{port}")


def static_url(name: str) -> str:
    """``/static/<name>?v=<content hash>``: a new file is a new URL."""
    version = _STATIC.get(name)
    return f"/static/{quote(name)}" + (f"?v={version}" if version else "")


templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
templates.env.filters.update(
    date=format_date,
    datetime=format_datetime,
    size=format_size,
    snippet=snippet,
    humanise=humanise,
    status=lambda v: label(v, STATUS_LABELS),
    disclosure=lambda v: label(v, DISCLOSURE_LABELS),
    decision=lambda v: label(v, DECISION_LABELS),
    consensus=lambda v: label(v, CONSENSUS_LABELS),
    org_kind=lambda v: label(v, ORG_KIND_LABELS),
    pub_kind=lambda v: label(v, PUB_KIND_LABELS),
    state=lambda v: label(v, STATE_LABELS),
    item_kind=lambda v: label(v, ITEM_KIND_LABELS),
    entry_type=lambda v: label(v, ENTRY_LABELS),
    segment=url_segment,
)
templates.env.globals.update(
    static=static_url,
    STATUS_LABELS=STATUS_LABELS,
    DISCLOSURE_NOTES=DISCLOSURE_NOTES,
    ORG_KIND_LABELS=ORG_KIND_LABELS,
)


# Errors ------------------------------------------------------------------------------------


class PageError(Exception):
    """An answer other than the page: rendered as an HTML error page with ``status``."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def not_found(what: str) -> PageError:
    return PageError(404, "Page not found", what)


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An HTML page for an error (never JSON, never a traceback)."""
    context = {
        "status": status,
        "heading": title,
        "detail": detail,
        "at": None,
        "as_of": None,
        "link": _plain_link,
        "request": request,
        "log_size": None,
    }
    headers = dict(SECURITY_HEADERS)
    if status == 503:
        headers["Retry-After"] = "5"
    return templates.TemplateResponse(
        request, "error.html", context, status_code=status, headers=headers
    )


def _plain_link(path: str, **params: Any) -> str:
    kept = [(k, str(v)) for k, v in params.items() if v is not None and v != ""]
    return path + ("?" + urlencode(kept) if kept else "")


P = ParamSpec("P")


def html_errors(route: Callable[P, Response]) -> Callable[P, Response]:
    """Answer a page's expected failures (unknown ids, bad parameters, the store being
    down) and any unexpected one with an HTML error page of the right status."""

    @functools.wraps(route)
    def page(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = kwargs.get("request")
        if not isinstance(request, Request):
            raise TypeError(f"{route.__name__} must take the request as `request`")
        try:
            return route(*args, **kwargs)
        except PageError as exc:
            return error_page(request, exc.status, exc.title, exc.detail)
        except ProblemError as exc:
            title = "Page not found" if exc.status == 404 else exc.title
            return error_page(request, exc.status, title, exc.detail)
        except (ViewTimeoutError, StorageError):
            log.exception("store unavailable for %s", request.url.path)
            return error_page(
                request,
                503,
                "Service unavailable",
                "The ledger's store is not answering just now. Please try again shortly.",
            )
        except NotFoundError as exc:
            return error_page(request, 404, "Page not found", str(exc))
        except (InvalidInputError, LedgerError) as exc:
            return error_page(request, 400, "There is a problem with the address", str(exc))
        except Exception:
            log.exception("unexpected error rendering %s", request.url.path)
            return error_page(
                request,
                500,
                "Sorry, there is a problem with the service",
                "Something went wrong showing this page. It has been logged.",
            )

    return page


# Parameters --------------------------------------------------------------------------------


def clean_param(value: str | None, name: str) -> str | None:
    """A query parameter as given, or None when empty; a 400 page when unusable."""
    if value is None:
        return None
    if "\x00" in value or len(value) > _MAX_PARAM:
        raise PageError(400, "There is a problem with the address", f"{name} is not valid")
    value = value.strip()
    return value or None


def clean_id(value: str, what: str) -> str:
    """An id from a path; unknown-looking ids are simply not found."""
    if "\x00" in value or len(value) > _MAX_ID or not value.strip():
        raise not_found(f"There is no {what} with that id.")
    return value


def clean_int(value: str | None, name: str, *, minimum: int = 1) -> int | None:
    value = clean_param(value, name)
    if value is None:
        return None
    if not re.fullmatch(r"\d{1,12}", value) or int(value) < minimum:
        raise PageError(
            400, "There is a problem with the address", f"{name} must be a whole number"
        )
    return int(value)


# The view of one request -------------------------------------------------------------------


@dataclass
class View:
    """One page request: the read models, the index the page reflects, how to link."""

    request: Request
    models: ReadModels
    as_of: str | None
    at: int
    log_size: int
    names: Names = field(init=False)

    def __post_init__(self) -> None:
        self.names = Names(self.models, self.at)

    @classmethod
    def open(cls, request: Request, as_of: str | None) -> View:
        as_of = clean_param(as_of, "as_of")
        models: ReadModels = request.app.state.read_models.get()
        try:
            at = models.at(parse_as_of(as_of))
        except ProblemError as exc:
            raise PageError(400, "There is a problem with the date or entry", exc.detail) from None
        head = models.runner.log.head()
        return cls(request, models, as_of, at, head.size if head is not None else 0)

    @property
    def reader(self) -> LogReader:
        reader: LogReader = self.request.app.state.readers.get()
        return reader

    def link(self, path: str, **params: Any) -> str:
        """A link to ``path`` (with ``params``) that keeps this page's ``as_of``."""
        if self.as_of is not None and "as_of" not in params:
            params["as_of"] = self.as_of
        return _plain_link(path, **params)

    def context(self, **values: Any) -> dict[str, Any]:
        return {
            "request": self.request,
            "at": self.at,
            "as_of": self.as_of,
            "log_size": self.log_size,
            "link": self.link,
            "names": self.names,
            "log_name": self.request.app.state.settings.log_name,
            "verifier_key": self.request.app.state.verifier_key,
            "witness_keys": [w.key for w in self.request.app.state.settings.witnesses],
            # Set only by `ledger export-site` on its own in-process app (api/static_site.py).
            "static_mirror": getattr(self.request.app.state, "static_mirror", None),
            **values,
        }


def render(view: View, template: str, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    headers = {**SECURITY_HEADERS, "X-Ledger-Index": str(view.at)}
    return templates.TemplateResponse(
        view.request, template, view.context(**values), status_code=status_code, headers=headers
    )


# Lists -------------------------------------------------------------------------------------


def every(method: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> list[Any]:
    """Every item of a read-model listing, following its pages (``next_after``)."""
    items: list[Any] = []
    after: Any = None
    for _ in range(100_000):
        page = method(*args, limit=500, after=after, **kwargs)
        items.extend(page["items"])
        after = page.get("next_after")
        if not after:
            break
    return items


@dataclass
class Paging:
    """One page of a web list: the index it reads at and the key it starts after, from an
    opaque ``cursor`` made for the same path and filters."""

    view: View
    shape: str
    filters: dict[str, str | None]
    at: int = 0
    after: Sequence[Any] | None = None

    def __post_init__(self) -> None:
        chosen = sorted((k, v) for k, v in self.filters.items() if v is not None)
        self.scope = f"web:{self.view.request.url.path}?{urlencode(chosen)}"
        self.secret = hashlib.sha256(
            b"open-policy-ledger web cursor key\n"
            + str(self.view.request.app.state.verifier_key).encode()
        ).digest()
        self.at = self.view.at

    def start(self, cursor: str | None) -> None:
        cursor = clean_param(cursor, "cursor")
        if cursor is None:
            return
        try:
            at, key = decode_cursor(
                cursor, scope=self.scope, secret=self.secret, shape=KEY_SHAPES[self.shape]
            )
        except CursorError:
            raise PageError(
                400,
                "There is a problem with the address",
                "The link to this page of results is damaged or belongs to another list. "
                "Go back to the first page.",
            ) from None
        if at >= self.view.log_size:
            raise PageError(400, "There is a problem with the address", "Unknown page of results.")
        self.at, self.after = at, key
        self.view.at = at
        self.view.names = Names(self.view.models, at)

    def first_link(self) -> str | None:
        """The first page of the same list (None on the first page)."""
        if self.after is None:
            return None
        params = {k: v for k, v in self.filters.items() if v is not None}
        return self.view.link(quote(self.view.request.url.path), **params)

    def next_link(self, page: Mapping[str, Any]) -> str | None:
        after = page.get("next_after")
        if not after:
            return None
        cursor = encode_cursor(self.at, after, scope=self.scope, secret=self.secret)
        params = {k: v for k, v in self.filters.items() if v is not None}
        return _plain_link(quote(self.view.request.url.path), **params, cursor=cursor)


# Names -------------------------------------------------------------------------------------


class Names:
    """Titles and names for ids, as of the page's index (each register read once)."""

    def __init__(self, models: ReadModels, at: int) -> None:
        self.models = models
        self.at = at

    @functools.cached_property
    def organisations(self) -> dict[str, dict[str, Any]]:
        return {o["id"]: o for o in every(self.models.organisations, as_of=self.at)}

    @functools.cached_property
    def meetings(self) -> dict[str, dict[str, Any]]:
        return {m["id"]: m for m in every(self.models.meetings, as_of=self.at)}

    @functools.cached_property
    def proposals(self) -> dict[str, dict[str, Any]]:
        return {p["id"]: p for p in every(self.models.proposals, as_of=self.at)}

    @functools.cached_property
    def publications(self) -> dict[str, dict[str, Any]]:
        return {p["id"]: p for p in every(self.models.publications, as_of=self.at)}

    @functools.cached_property
    def processes(self) -> list[dict[str, Any]]:
        """Every process with its strands and phases, oldest first."""
        found = []
        for summary in process_view.list_processes(self.models.db, self.at):
            full = self.models.process(summary["id"], self.at)
            if full is not None:
                found.append(full)
        return found

    @functools.cached_property
    def strands(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(p["id"], s["strand_id"]): s for p in self.processes for s in p.get("strands", [])}

    def org(self, org_id: Any) -> str:
        found = self.organisations.get(str(org_id))
        return str(found["name"]) if found else f"Organisation {org_id}"

    def orgs(self, ids: Iterable[Any] | None) -> list[str]:
        return [self.org(i) for i in ids or []]

    def meeting(self, meeting_id: Any) -> str:
        found = self.meetings.get(str(meeting_id))
        return str(found["title"]) if found else f"Meeting {meeting_id}"

    def unattributed(self, meeting_id: Any) -> str | None:
        """``a meeting held under the Chatham House Rule`` (or the words for a private or
        non-attributed meeting) when the meeting attributes no one, else None."""
        found = self.meetings.get(str(meeting_id)) if meeting_id else None
        return UNATTRIBUTED_MEETING.get(str(found.get("disclosure"))) if found else None

    def proposal(self, proposal_id: Any) -> str:
        found = self.proposals.get(str(proposal_id))
        return str(found["title"]) if found else f"Proposal {proposal_id}"

    def publication(self, publication_id: Any) -> str:
        found = self.publications.get(str(publication_id))
        return str(found["title"]) if found else f"Publication {publication_id}"

    def strand(self, process_id: Any, strand_id: Any) -> str:
        if strand_id is None:
            return "Whole process"
        found = self.strands.get((str(process_id), str(strand_id)))
        return str(found["title"]) if found else humanise(strand_id)

    def group(self, process_id: Any, group: Any) -> str:
        """A membership group: a strand's title, or the group's name in words."""
        found = self.strands.get((str(process_id), str(group)))
        return str(found["title"]) if found else humanise(group)

    def subject(self, kind: str, subject_id: str) -> tuple[str, str | None]:
        """A log subject's name and the path of its page (None when it has none)."""
        segment = url_segment(subject_id)
        if kind == "proposal":
            return self.proposal(subject_id), f"/web/proposals/{segment}"
        if kind == "meeting":
            return self.meeting(subject_id), f"/web/meetings/{segment}"
        if kind == "publication":
            return self.publication(subject_id), f"/web/publications/{segment}"
        if kind == "organisation":
            return self.org(subject_id), f"/web/organisations/{segment}"
        if kind == "process":
            for found in self.processes:
                if found["id"] == subject_id:
                    return str(found["title"]), "/"
            return "The process", "/"
        return humanise(kind), None
