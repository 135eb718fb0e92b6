"""What every workspace page shares: the signed-in official, templates, form fields and values,
errors shown next to forms, receipts, and "what changed since" for version conflicts.

The workspace reuses the public website's layout and CSS (``api/web``) with its own templates
(``api/workspace/templates``) and a few extra rules (``api/workspace/static/workspace.css``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from api.sessions import COOKIE, SignedIn, current_official
from api.web.site import SECURITY_HEADERS, Names, format_datetime
from api.web.site import templates as web_templates
from ledger.application import LedgerApplication, Receipt
from ledger.chain import parse_entry
from ledger.storage import LogReader
from projections.reader import ReadModels

__all__ = [
    "ROLE_LABELS",
    "STATIC_DIR",
    "Field",
    "Redirect",
    "Refused",
    "Upload",
    "Values",
    "Workspace",
    "changes_since",
    "describe",
    "my_entries",
    "page",
    "public_page",
    "receipt_view",
    "redirect",
    "refusal_page",
    "signed_in_or_redirect",
    "ws_static",
]

log = logging.getLogger("api.workspace")

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
WEB_TEMPLATES = HERE.parent / "web" / "templates"

SESSION_HOURS = 8.0
"""How long a workspace session lasts."""

ROLE_LABELS = {
    "recorder": "Recorder",
    "publisher": "Publisher",
    "admin": "Administrator",
}

HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store"}

_STATIC = {
    p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
    for p in STATIC_DIR.glob("*")
    if p.is_file()
}


def ws_static(name: str) -> str:
    """``/workspace/static/<name>?v=<content hash>``."""
    return f"/workspace/static/{name}" + (f"?v={_STATIC[name]}" if name in _STATIC else "")


templates = Jinja2Templates(directory=[TEMPLATES_DIR, WEB_TEMPLATES])
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
templates.env.filters.update(web_templates.env.filters)
templates.env.globals.update(web_templates.env.globals)
templates.env.globals.update(ws_static=ws_static, ROLE_LABELS=ROLE_LABELS)


# Values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file posted with a form."""

    filename: str
    media_type: str
    content: bytes


class Values:
    """A form's submitted values (text fields, repeated fields and uploaded files)."""

    def __init__(self, items: Sequence[tuple[str, str]] = (), files: Mapping[str, Upload] = {}):
        self.items: list[tuple[str, str]] = [(k, v) for k, v in items]
        self.files = dict(files)

    @classmethod
    async def read(cls, form: FormData) -> Values:
        items: list[tuple[str, str]] = []
        files: dict[str, Upload] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                if content or value.filename:
                    files[key] = Upload(
                        value.filename or "",
                        (value.content_type or "").split(";", 1)[0].strip().lower(),
                        content,
                    )
            else:
                items.append((key, str(value)))
        return cls(items, files)

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.items:
            if key == name:
                return value.strip()
        return default

    def all(self, name: str) -> list[str]:
        return [v.strip() for k, v in self.items if k == name and v.strip()]

    def opt(self, name: str) -> str | None:
        return self.get(name) or None

    def set(self, name: str, value: str) -> None:
        self.items = [(k, v) for k, v in self.items if k != name] + [(name, value)]

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in self.items:
            found.setdefault(key, [])
            found[key].append(value)
        return {k: v[0] if len(v) == 1 else v for k, v in found.items()}


@dataclass
class Field:
    """One field of a form. ``kind``: text, textarea, select, radios, checkboxes, datetime,
    number, file, rows (repeated groups of ``columns``)."""

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str = ""
    pattern: str | None = None
    pattern_text: str = ""
    maxlength: int | None = None
    columns: list[Field] = field(default_factory=list)
    rows: int = 0
    row_label: str = ""
    add_label: str = ""
    default: str = ""
    blank: str = ""  # a select's empty choice ("" for none)
    wide: bool = False

    @property
    def id(self) -> str:
        return "f-" + self.name

    def value(self, values: Values) -> str:
        return values.get(self.name, self.default)

    def chosen(self, values: Values) -> list[str]:
        return values.all(self.name)


# The workspace of one request --------------------------------------------------------------


class Redirect(Exception):  # noqa: N818 (a control-flow answer, not an error)
    """Answer with a redirect instead of the page."""

    def __init__(self, location: str, *, clear_cookie: bool = False) -> None:
        super().__init__(location)
        self.location = location
        self.clear_cookie = clear_cookie


class Refused(Exception):  # noqa: N818 (answered with an error page)
    """Answer with an error page (403 for role and CSRF refusals)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def signed_in_or_redirect(request: Request) -> SignedIn:
    who = current_official(request)
    if who is None:
        if request.cookies.get(COOKIE):
            # A session that expired, or whose token was revoked.
            raise Redirect("/workspace/sign-in?ended=1", clear_cookie=True)
        raise Redirect("/workspace/sign-in")
    return who


@dataclass
class Workspace:
    """One workspace request: the official, the ledger, the read models."""

    request: Request
    who: SignedIn
    models: ReadModels = field(init=False)
    at: int = field(init=False)

    def __post_init__(self) -> None:
        self.models = self.request.app.state.read_models.get()
        self.at = self.models.at(None)

    @property
    def app(self) -> LedgerApplication:
        ledger: LedgerApplication = self.request.app.state.ledger
        return ledger

    @property
    def role(self) -> str:
        return self.who.principal.actor.role

    @property
    def reader(self) -> LogReader:
        reader: LogReader = self.request.app.state.readers.get()
        return reader

    def names(self) -> Names:
        return Names(self.models, self.at)

    def context(self, **values: Any) -> dict[str, Any]:
        actor = self.who.principal.actor
        names = self.names()
        org_name = names.org(actor.org) if actor.org else "No organisation"
        return {
            "request": self.request,
            "at": None,
            "as_of": None,
            "log_size": None,
            "link": _link,
            "names": names,
            "who": actor,
            "org_name": org_name,
            "role_label": ROLE_LABELS.get(actor.role, actor.role),
            "csrf": self.who.csrf,
            **values,
        }


def _link(path: str, **_: Any) -> str:
    return path


def page(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=HEADERS
    )


def redirect(location: str, *, clear_cookie: bool = False) -> Response:
    response = RedirectResponse(location, status_code=303, headers=HEADERS)
    if clear_cookie:
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


def refusal_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    context = {
        "request": request,
        "at": None,
        "as_of": None,
        "log_size": None,
        "link": _link,
        "status": status,
        "heading": title,
        "detail": detail,
        "who": None,
    }
    return page(request, "ws_error.html", context, status_code=status)


# Entries -----------------------------------------------------------------------------------

_SCAN = 4096  # entries read back from the head, at most, for "my entries" and "changes since"
_CHUNK = 256


def _backwards(reader: LogReader, limit: int = _SCAN) -> Any:
    head = reader.head()
    end = head.size if head is not None else 0
    stop = max(0, end - limit)
    while end > stop:
        start = max(stop, end - _CHUNK)
        for raw in reversed(reader.entries(start, end)):
            yield parse_entry(raw)
        end = start


def describe(entry: Mapping[str, Any]) -> dict[str, Any]:
    data = entry.get("data") or {}
    subject = entry.get("subject") or {}
    summary = ", ".join(
        f"{k.replace('_', ' ')}: {_short(v)}"
        for k, v in data.items()
        if k not in ("sections", "changes", "items") and v not in (None, "", [], {})
    )
    if "changes" in data:
        summary = (summary + "; " if summary else "") + f"{len(data['changes'])} change(s)"
    if "items" in data:
        summary = (summary + "; " if summary else "") + f"{len(data['items'])} item(s)"
    return {
        "index": entry["index"],
        "type": entry["type"],
        "time": format_datetime(entry.get("time")),
        "actor": (entry.get("actor") or {}).get("id", ""),
        "subject_kind": subject.get("kind"),
        "subject_id": subject.get("id"),
        "version": subject.get("version"),
        "summary": summary[:400],
    }


def _short(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= 120 else text[:117] + "…"


def my_entries(ws: Workspace, limit: int = 20) -> list[dict[str, Any]]:
    """The official's latest entries, newest first (from the log's latest entries)."""
    actor = ws.who.principal.actor
    found = []
    for entry in _backwards(ws.reader):
        who = entry.get("actor") or {}
        if who.get("id") == actor.id and who.get("role") == actor.role:
            found.append(describe(entry))
            if len(found) >= limit:
                break
    return found


def changes_since(ws: Workspace, subject_id: str, seen: int) -> list[dict[str, Any]]:
    """Entries about ``subject_id`` after the version the official saw, oldest first."""
    found = []
    for entry in _backwards(ws.reader):
        subject = entry.get("subject") or {}
        if subject.get("id") != subject_id:
            continue
        if int(subject.get("version", 0)) <= seen:
            break
        found.append(describe(entry))
    return list(reversed(found))


PUBLIC_PAGES = {
    "proposal": "/web/proposals/{}",
    "meeting": "/web/meetings/{}",
    "publication": "/web/publications/{}",
    "organisation": "/web/organisations/{}",
}


def public_page(kind: str | None, subject_id: str | None) -> str:
    if kind in PUBLIC_PAGES and subject_id:
        return PUBLIC_PAGES[kind].format(subject_id)
    if kind == "process":
        return "/"
    return "/web/audit"


def receipt_view(receipt: Receipt) -> dict[str, Any]:
    subject = receipt.fields["subject"]
    return {
        "index": receipt.index,
        "entry_hash": receipt.entry_hash,
        "tree_size": receipt.tree_size,
        "checkpoint": receipt.checkpoint,
        "type": receipt.fields["type"],
        "subject_kind": subject["kind"],
        "subject_id": subject["id"],
        "version": subject["version"],
        "public": public_page(subject["kind"], subject["id"]),
    }
