"""Atom 1.0 feeds (RFC 4287): the latest entries of the whole log, and one proposal's history.

Entry ids are ``tag:`` URIs (RFC 4151) made from the log's name and the entry's index, so an
entry keeps its id for ever, whichever server or mirror serves the feed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.web.site import (
    DECISION_LABELS,
    ENTRY_LABELS,
    STATUS_LABELS,
    View,
    clean_id,
    every,
    html_errors,
    label,
    not_found,
    public_base_url,
    url_segment,
)

__all__ = ["ATOM", "router", "tag_base", "xml_text"]

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml"
FEED_SIZE = 50
_EPOCH = "1970-01-01T00:00:00Z"

router = APIRouter(include_in_schema=False)
AsOf = Annotated[str | None, Query()]


def tag_base(view: View) -> str:
    """``tag:<authority>,<date of entry 0>:<rest of the log name>``: the log's own name is the
    authority (it is a DNS name by convention), and the day its first entry was made dates
    it (RFC 4151 §2.1)."""
    name = str(view.request.app.state.settings.log_name)
    authority, _, rest = name.partition("/")
    authority = re.sub(r"[^a-z0-9.-]", "-", authority.split(":", 1)[0].lower()) or "localhost"
    date = "2000-01-01"
    if view.log_size:
        first = view.reader.entries(0, 1)
        if first:
            date = str(orjson.loads(first[0]).get("time", date))[:10]
    specific = quote(rest or "log", safe="/-._~!$&'()*+,;=:@")
    return f"tag:{authority},{date}:{specific}"


# Not XML 1.0 characters (§2.2): ElementTree writes them as they are, and the feed is then
# not XML. Commands refuse them (ledger.text); entries recorded before that may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", value)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _feed(
    view: View, *, feed_id: str, title: str, self_path: str, page_path: str, subtitle: str
) -> ET.Element:
    base = public_base_url(view.request)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _el(feed, "id", feed_id)
    _el(feed, "title", title)
    _el(feed, "subtitle", subtitle)
    _el(feed, "link", rel="self", type=MEDIA_TYPE, href=base + self_path)
    _el(feed, "link", rel="alternate", type="text/html", href=base + page_path)
    author = _el(feed, "author")
    _el(author, "name", str(view.request.app.state.settings.log_name))
    _el(feed, "generator", "Open Policy Ledger")
    return feed


def _entry(
    feed: ET.Element,
    view: View,
    *,
    entry_id: str,
    title: str,
    updated: str,
    href: str | None,
    index: int,
    entry_type: str,
    summary: str,
) -> None:
    base = public_base_url(view.request)
    entry = _el(feed, "entry")
    _el(entry, "id", entry_id)
    _el(entry, "title", title)
    _el(entry, "updated", updated)
    raw = f"{base}/entries/{index}"
    if href is not None:
        _el(entry, "link", rel="alternate", type="text/html", href=base + href)
        _el(entry, "link", rel="related", type="application/json", href=raw)
    else:  # no page of its own (a correction, a key rotation): the entry is the alternate
        _el(entry, "link", rel="alternate", type="application/json", href=raw)
    _el(entry, "category", term=entry_type, label=label(entry_type, ENTRY_LABELS))
    _el(entry, "summary", summary)


def _respond(feed: ET.Element, updated: str, at: int) -> Response:
    updated_el = ET.Element(f"{{{ATOM}}}updated")
    updated_el.text = xml_text(updated)
    feed.insert(3, updated_el)
    ET.register_namespace("", ATOM)
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(
        body,
        media_type=MEDIA_TYPE,
        headers={"X-Ledger-Index": str(at), "X-Content-Type-Options": "nosniff"},
    )


@router.get("/feeds/log.atom")
@html_errors
def log_feed(request: Request, as_of: AsOf = None) -> Response:
    view = View.open(request, as_of)
    base = tag_base(view)
    feed = _feed(
        view,
        feed_id=f"{base}/feed/log",
        title="Open Policy Ledger: latest entries",
        self_path="/feeds/log.atom",
        page_path="/",
        subtitle="Every change to the record, newest first, as entries of the signed log.",
    )
    items = view.models.timeline(as_of=view.at, limit=FEED_SIZE)["items"] if view.at >= 0 else []
    for item in items:
        name, path = view.names.subject(item["subject_kind"], item["subject_id"])
        what = label(item["type"], ENTRY_LABELS)
        _entry(
            feed,
            view,
            entry_id=f"{base}/entry/{item['index']}",
            title=f"{what}: {name}",
            updated=item["time"],
            href=path,
            index=item["index"],
            entry_type=item["type"],
            summary=f"Entry {item['index']} of the log, {item['time']}: {what.lower()} ({name}).",
        )
    return _respond(feed, items[0]["time"] if items else _EPOCH, view.at)


def _describe(view: View, item: dict[str, Any]) -> tuple[str, str]:
    """A proposal history entry's title and summary, in words."""
    detail: dict[str, Any] = item.get("detail") or {}
    kind = item["type"]
    if kind == "proposal.tabled":
        return f"Tabled: {detail.get('title', '')}", "The proposal was tabled as version 1."
    if kind == "proposal.amendment_proposed":
        raised_at = view.names.unattributed(detail.get("meeting_id"))
        if raised_at:  # attributes no one, even where an older entry names an organisation
            title = f"Amendment {detail.get('amendment_id')} raised at {raised_at}"
        else:
            title = (
                f"Amendment {detail.get('amendment_id')} proposed by "
                f"{view.names.org(detail.get('proposer_org'))}"
            )
        return title, str(detail.get("rationale") or "")
    if kind == "proposal.amendment_decided":
        decision = label(detail.get("decision"), DECISION_LABELS)
        decided_at = view.names.unattributed(detail.get("meeting_id"))
        dissent = [] if decided_at else view.names.orgs(detail.get("dissenting_orgs"))
        note = str(detail.get("note") or "")
        if decided_at:
            note += (" " if note else "") + (
                f"Decided at {decided_at}: any dissent is not attributed to any organisation."
            )
        elif dissent:
            note += (" " if note else "") + "Dissenting: " + ", ".join(dissent) + "."
        return f"Amendment {detail.get('amendment_id')}: {decision}", note
    if kind == "proposal.revised":
        return f"Version {detail.get('text_version')} of the text", str(detail.get("note") or "")
    if kind == "proposal.status_changed":
        old = label(detail.get("old_status"), STATUS_LABELS)
        new = label(detail.get("new_status"), STATUS_LABELS)
        return f"Status: {old} → {new}", str(detail.get("reason") or "")
    if kind == "proposal.legislative_outcome_linked":
        return (
            f"Linked to {detail.get('legislation')}, {detail.get('provision')}",
            str(detail.get("note") or ""),
        )
    return label(kind, ENTRY_LABELS), ""


@router.get("/feeds/proposals/{proposal_id}.atom")
@html_errors
def proposal_feed(request: Request, proposal_id: str, as_of: AsOf = None) -> Response:
    proposal_id = clean_id(proposal_id, "proposal")
    view = View.open(request, as_of)
    found = view.models.proposal(proposal_id, view.at)
    if found is None:
        raise not_found("There is no proposal with that id at this point in the log.")
    base = tag_base(view)
    segment = url_segment(proposal_id)
    history_path = f"/web/proposals/{segment}/history"
    feed = _feed(
        view,
        feed_id=f"{base}/feed/proposal/{segment}",
        title=f"{found['title']}: history",
        self_path=f"/feeds/proposals/{segment}.atom",
        page_path=history_path,
        subtitle="Every entry about this proposal, newest first.",
    )
    items = list(reversed(every(view.models.history, proposal_id, as_of=view.at)))
    for item in items:
        title, summary = _describe(view, item)
        _entry(
            feed,
            view,
            entry_id=f"{base}/entry/{item['index']}",
            title=title,
            updated=item["time"],
            href=f"{history_path}#entry-{item['index']}",
            index=item["index"],
            entry_type=item["type"],
            summary=summary or title,
        )
    return _respond(feed, items[0]["time"] if items else _EPOCH, view.at)


@router.get("/feeds/{rest:path}")
@html_errors
def unknown_feed(request: Request, rest: str) -> Response:  # noqa: ARG001
    raise not_found("There is no feed at this address.")
