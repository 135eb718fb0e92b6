"""The workspace's forms: one per ledger command, each with its fields, the record it acts on
(if any) and how its values become the command.

A form's ``fields`` are built from the current state (pickers list the organisations, held
meetings, open proposals …) and the submitted values; ``run`` turns the values into the
command and returns its receipt, raising :class:`FormError` for a value it cannot use and
letting the ledger's typed errors through (the routes show them next to the form).
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.auth import ADMIN, PUBLISH, RECORD
from api.routes.documents import MEDIA_TYPES, _access
from api.web.site import (
    CONSENSUS_LABELS,
    DECISION_LABELS,
    DISCLOSURE_LABELS,
    ITEM_KIND_LABELS,
    ORG_KIND_LABELS,
    STATUS_LABELS,
    UNATTRIBUTED_MEETING,
    label,
)
from api.workspace.core import Field, Upload, Values, Workspace
from ledger.aggregates import (
    CONSENSUS_STATES,
    DECISIONS,
    DISCLOSURE_MODES,
    FINAL_STATUSES,
    ORGANISATION_KINDS,
    OUTCOME_ITEM_KINDS,
    PUBLICATION_KINDS,
    STATUS_TRANSITIONS,
    apply_changes,
)
from ledger.application import Receipt
from ledger.storage.side import SideStore
from projections.diff import diff_as_json, diff_versions

__all__ = [
    "FORMS",
    "GROUPS",
    "Ctx",
    "FormError",
    "Spec",
    "amendment_changes",
    "amendment_preview",
    "publish_upload",
    "row_count",
]

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}"
ID_TEXT = "letters, digits, dots, dashes or underscores, starting with a letter or digit"
SECTION_ROWS = 3
CHANGE_ROWS = 2
ITEM_ROWS = 3
MAX_ROWS = 200

PUB_KIND_NAMES = {
    "meeting_note": "Meeting note",
    "minutes": "Minutes",
    "discussion_paper": "Discussion paper",
    "policy_paper": "Policy paper",
    "consultation_document": "Consultation document",
    "consultation_response": "Consultation response",
    "report": "Report",
    "legislation": "Legislation",
    "other": "Other",
}


class FormError(Exception):
    """A submitted value the form cannot use; ``field`` names the field (None: the form)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Ctx:
    """A form being shown or submitted: the workspace, the record it acts on and values."""

    ws: Workspace
    values: Values
    record_id: str | None = None
    record: Any = None
    stored: dict[str, Any] = field(default_factory=dict)

    @property
    def expected(self) -> int | None:
        seen = self.values.get("expected_version")
        if not seen:
            return None
        if not re.fullmatch(r"\d{1,12}", seen):
            raise FormError("the record version sent with the form is not valid")
        return int(seen)


@dataclass(frozen=True)
class Spec:
    slug: str
    title: str
    group: str
    roles: frozenset[str]
    fields: Callable[[Ctx], list[Field]]
    run: Callable[[Ctx], Receipt]
    summary: str = ""
    subject: str | None = None  # proposal, meeting, publication, organisation, process
    button: str = "Record"
    multipart: bool = False
    preview: bool = False
    confirm: bool = False
    pick: Callable[[Ctx], list[tuple[str, str]]] | None = None


# Pickers -----------------------------------------------------------------------------------


def _orgs(ctx: Ctx) -> list[tuple[str, str]]:
    found = ctx.ws.names().organisations.values()
    return sorted(((o["id"], str(o["name"])) for o in found), key=lambda p: p[1].lower())


def _processes(ctx: Ctx) -> list[tuple[str, str]]:
    return [(p["id"], str(p["title"])) for p in ctx.ws.names().processes]


def _strands(ctx: Ctx) -> list[tuple[str, str]]:
    processes = ctx.ws.names().processes
    many = len(processes) > 1
    return [
        (s["strand_id"], f"{s['title']} ({p['title']})" if many else str(s["title"]))
        for p in processes
        for s in p.get("strands", [])
    ]


def _meetings(ctx: Ctx, *, held: bool | None = None) -> list[tuple[str, str]]:
    found = ctx.ws.names().meetings.values()
    return [
        (
            m["id"],
            f"{m['title']} ({str(m.get('starts_at', ''))[:10]}"
            + (
                f"; {DISCLOSURE_LABELS[m['disclosure']]}: attributes no one)"
                if m.get("disclosure") in UNATTRIBUTED_MEETING
                else ")"
            ),
        )
        for m in sorted(found, key=lambda m: str(m.get("starts_at", "")), reverse=True)
        if held is None or bool(m.get("held")) == held
    ]


def _proposals(ctx: Ctx, *, open_only: bool = True) -> list[tuple[str, str]]:
    found = ctx.ws.names().proposals.values()
    return sorted(
        (
            (p["id"], f"{p['title']} ({label(p['status'], STATUS_LABELS).lower()})")
            for p in found
            if not open_only or p["status"] not in FINAL_STATUSES
        ),
        key=lambda p: p[1].lower(),
    )


def _publications(ctx: Ctx, *, state: str | None = "published") -> list[tuple[str, str]]:
    found = ctx.ws.names().publications.values()
    return [
        (p["id"], str(p["title"]))
        for p in sorted(found, key=lambda p: str(p["title"]).lower())
        if state is None or p.get("state") == state
    ]


def _choices(codes: tuple[str, ...], labels: dict[str, str]) -> list[tuple[str, str]]:
    return [(c, label(c, labels)) for c in codes]


# Conversions -------------------------------------------------------------------------------

_LOCAL_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?(\.\d+)?Z?$")


def _time(values: Values, name: str, what: str) -> str:
    value = values.get(name)
    found = _LOCAL_TIME.match(value)
    if found is None:
        raise FormError(f"Enter {what} as a date and time, like 2015-01-10T10:00", name)
    return f"{found.group(1)}T{found.group(2)}{found.group(3) or ':00'}Z"


def row_count(values: Values, name: str, default: int) -> int:
    value = values.get(f"{name}-count")
    count = int(value) if re.fullmatch(r"\d{1,3}", value) else default
    return max(1, min(count, MAX_ROWS))


def _rows(values: Values, name: str, default: int, columns: list[str]) -> list[dict[str, str]]:
    count = row_count(values, name, default)
    return [{c: values.get(f"{name}-{i}-{c}") for c in columns} for i in range(count)]


def _upload(ctx: Ctx, name: str) -> tuple[str, int, str]:
    """Store the uploaded file (by SHA-256); its hash, size and media type."""
    found: Upload | None = ctx.values.files.get(name)
    if found is None or not found.content:
        raise FormError("Choose a file to upload (it must not be empty)", name)
    media_type = found.media_type
    if media_type not in MEDIA_TYPES:
        guessed = mimetypes.guess_type(found.filename)[0] or ""
        media_type = guessed if guessed in MEDIA_TYPES else "application/octet-stream"
    digest = hashlib.sha256(found.content).hexdigest()
    side: SideStore = ctx.ws.request.app.state.side
    who = ctx.ws.who.principal
    # As POST /documents: to one who could not read the stored bytes before uploading them,
    # the answer is that of a first upload (their own media type); they are its uploader.
    readable = _access(ctx.ws.request, who, digest).allowed
    uploader = (who.actor.id, who.actor.org, who.token_id)
    if not side.put_document(digest, media_type, found.content, uploader=uploader) and readable:
        stored = side.document(digest, content=False)
        if stored is not None:
            media_type = stored.media_type
    ctx.stored = {
        "sha256": digest,
        "size": len(found.content),
        "media_type": media_type,
        "filename": found.filename,
    }
    return digest, len(found.content), media_type


def _stored(ctx: Ctx, sha256: str) -> tuple[int, str]:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise FormError("The document's SHA-256 is missing; upload the file again", "file")
    side: SideStore = ctx.ws.request.app.state.side
    found = side.document(sha256, content=False)
    if found is None:
        raise FormError("That document is not stored; upload the file again", "file")
    return found.size, found.media_type


def _actor(ctx: Ctx) -> Any:
    return ctx.ws.who.principal.actor


# Process -----------------------------------------------------------------------------------


def _process_fields(_ctx: Ctx) -> list[Field]:
    return [
        Field("title", "Title", required=True, maxlength=500),
        Field("summary", "Summary", "textarea", hint="What the process is for."),
    ]


def _start_process(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.start_process(
        title=v.get("title"), summary=v.get("summary"), actor=_actor(ctx)
    )


def _part_fields(kind: str) -> Callable[[Ctx], list[Field]]:
    def fields(_ctx: Ctx) -> list[Field]:
        return [
            Field(
                f"{kind}_id",
                f"{kind.title()} id",
                required=True,
                pattern=ID_PATTERN,
                pattern_text=ID_TEXT,
                hint=f"A short, stable id for the {kind}, like research-statistics: "
                + ID_TEXT
                + ".",
            ),
            Field("title", "Title", required=True, maxlength=500),
            Field("summary", "Summary", "textarea", hint=""),
        ]

    return fields


def _add_strand(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.add_strand(
        str(ctx.record_id),
        strand_id=v.get("strand_id"),
        title=v.get("title"),
        summary=v.get("summary"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


def _start_phase(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.start_phase(
        str(ctx.record_id),
        phase_id=v.get("phase_id"),
        title=v.get("title"),
        summary=v.get("summary"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


# Organisations -----------------------------------------------------------------------------


def _organisation_fields(_ctx: Ctx) -> list[Field]:
    return [
        Field("name", "Name", required=True, maxlength=500),
        Field(
            "org_kind",
            "Kind of organisation",
            "radios",
            required=True,
            options=_choices(ORGANISATION_KINDS, ORG_KIND_LABELS),
        ),
    ]


def _register_organisation(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.register_organisation(
        name=v.get("name"), org_kind=v.get("org_kind"), actor=_actor(ctx)
    )


def _group_fields(ctx: Ctx) -> list[Field]:
    return [
        Field("process_id", "Process", "select", required=True, options=_processes(ctx)),
        Field(
            "group",
            "Strand or group",
            required=True,
            maxlength=500,
            hint="A strand id (" + ", ".join(s for s, _ in _strands(ctx)) + ") or a group name.",
        ),
    ]


def _membership_fields(ctx: Ctx) -> list[Field]:
    return [
        *_group_fields(ctx),
        Field("role", "Role in the group", default="member", required=True, maxlength=500),
    ]


def _end_membership_fields(ctx: Ctx) -> list[Field]:
    memberships = getattr(ctx.record, "memberships", {}) or {}
    listed = ", ".join(str(key[1]) if isinstance(key, tuple) else str(key) for key in memberships)
    found = _group_fields(ctx)
    if listed:
        found[1].hint = f"Current memberships: {listed}."
    return [*found, Field("reason", "Reason", "textarea", hint="")]


def _add_membership(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.add_membership(
        str(ctx.record_id),
        process_id=v.get("process_id"),
        group=v.get("group"),
        role=v.get("role") or "member",
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


def _end_membership(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.end_membership(
        str(ctx.record_id),
        process_id=v.get("process_id"),
        group=v.get("group"),
        reason=v.get("reason"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


# Proposals ---------------------------------------------------------------------------------


def _table_fields(ctx: Ctx) -> list[Field]:
    return [
        Field("title", "Title", required=True, maxlength=500),
        Field("process_id", "Process", "select", required=True, options=_processes(ctx)),
        Field("strand_id", "Strand", "select", required=True, options=_strands(ctx)),
        Field(
            "sponsor_org", "Sponsoring organisation", "select", required=True, options=_orgs(ctx)
        ),
        Field(
            "meeting_id",
            "Tabled at meeting",
            "select",
            options=_meetings(ctx, held=True),
            blank="Not at a meeting",
            hint="Only meetings recorded as held are listed. A meeting that attributes no one "
            "(non-attributed, Chatham House Rule, private) cannot be named here, since the "
            "proposal names its sponsor: table it without a meeting and record in the "
            "meeting's outcome that it was discussed there.",
        ),
        Field(
            "sections",
            "Sections",
            "rows",
            rows=row_count(ctx.values, "sections", SECTION_ROWS),
            row_label="Section",
            add_label="Add another section",
            hint="Blank sections are left out. Each section needs a unique id.",
            columns=[
                Field(
                    "id",
                    "Section id",
                    default="s{n}",
                    pattern=ID_PATTERN,
                    pattern_text=ID_TEXT,
                ),
                Field("heading", "Heading", maxlength=500),
                Field("text", "Text", "textarea", wide=True),
            ],
        ),
    ]


def _table_proposal(ctx: Ctx) -> Receipt:
    v = ctx.values
    sections = []
    for i, row in enumerate(_rows(v, "sections", SECTION_ROWS, ["id", "heading", "text"])):
        if not row["heading"] and not row["text"]:
            continue
        if not row["id"]:
            raise FormError(f"Section {i + 1} needs an id", f"sections-{i}-id")
        sections.append(row)
    if not sections:
        raise FormError("Write at least one section (a heading or text)", "sections-0-heading")
    return ctx.ws.app.table_proposal(
        process_id=v.get("process_id"),
        strand_id=v.get("strand_id"),
        title=v.get("title"),
        sections=sections,
        sponsor_org=v.get("sponsor_org"),
        meeting_id=v.opt("meeting_id"),
        actor=_actor(ctx),
    )


def _section_options(ctx: Ctx) -> list[tuple[str, str]]:
    return [
        (s["id"], f"{s['id']}: {s['heading']}" if s.get("heading") else s["id"])
        for s in getattr(ctx.record, "sections", [])
    ]


def _amendment_fields(ctx: Ctx) -> list[Field]:
    return [
        Field(
            "proposer_org",
            "Proposed by",
            "select",
            options=_orgs(ctx),
            blank="No one (raised at a meeting that attributes no one)",
            hint="Required, except for an amendment raised at a non-attributed, Chatham House "
            "Rule or private meeting: such a meeting attributes no one, so leave this as "
            "no one and choose the meeting below.",
        ),
        Field(
            "meeting_id",
            "Proposed at meeting",
            "select",
            options=_meetings(ctx, held=True),
            blank="Not at a meeting",
            hint="Only meetings recorded as held are listed.",
        ),
        Field("rationale", "Rationale", "textarea", hint="Why the change is proposed."),
        Field(
            "changes",
            "Changes",
            "rows",
            rows=row_count(ctx.values, "changes", CHANGE_ROWS),
            row_label="Change",
            add_label="Add another change",
            hint="Replace a section's text, insert a new section after one, or delete a "
            "section. Rows without a kind of change are left out.",
            columns=[
                Field(
                    "op",
                    "Kind of change",
                    "select",
                    options=[
                        ("replace", "Replace the text of a section"),
                        ("insert", "Insert a new section after"),
                        ("delete", "Delete a section"),
                    ],
                    blank="No change",
                ),
                Field(
                    "section",
                    "Section",
                    "select",
                    options=_section_options(ctx),
                    blank="(insert: at the start)",
                ),
                Field(
                    "new_id",
                    "New section id (insert only)",
                    pattern=ID_PATTERN,
                    pattern_text=ID_TEXT,
                ),
                Field("heading", "Heading", maxlength=500, hint="Replace: blank keeps it."),
                Field("text", "Text", "textarea", wide=True),
            ],
        ),
    ]


def amendment_changes(ctx: Ctx) -> list[dict[str, str]]:
    changes = []
    rows = _rows(ctx.values, "changes", CHANGE_ROWS, ["op", "section", "new_id", "heading", "text"])
    for i, row in enumerate(rows):
        op = row["op"]
        if not op:
            continue
        if op == "insert":
            if not row["new_id"]:
                raise FormError(
                    f"Change {i + 1}: give the new section an id", f"changes-{i}-new_id"
                )
            change = {"op": "insert", "section_id": row["new_id"], "after": row["section"]}
            change.update(heading=row["heading"], text=row["text"])
        elif op in ("replace", "delete"):
            if not row["section"]:
                raise FormError(
                    f"Change {i + 1}: choose the section to {op}", f"changes-{i}-section"
                )
            change = {"op": op, "section_id": row["section"]}
            if op == "replace":
                change["text"] = row["text"]
                if row["heading"]:
                    change["heading"] = row["heading"]
        else:
            raise FormError(f"Change {i + 1}: choose a kind of change", f"changes-{i}-op")
        changes.append(change)
    if not changes:
        raise FormError("Add at least one change", "changes-0-op")
    return changes


def amendment_preview(ctx: Ctx) -> list[dict[str, Any]]:
    """The current text against the text after the changes, as a word diff."""
    old = list(getattr(ctx.record, "sections", []))
    new = apply_changes(old, amendment_changes(ctx))
    return diff_as_json(diff_versions(old, new))


def _propose_amendment(ctx: Ctx) -> Receipt:
    v = ctx.values
    base = v.get("base_version")
    if not re.fullmatch(r"\d{1,9}", base):
        raise FormError("The text version sent with the form is not valid")
    return ctx.ws.app.propose_amendment(
        str(ctx.record_id),
        base_version=int(base),
        changes=amendment_changes(ctx),
        rationale=v.get("rationale"),
        proposer_org=v.opt("proposer_org"),
        meeting_id=v.opt("meeting_id"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


def _undecided(ctx: Ctx) -> list[tuple[str, str]]:
    amendments: dict[str, dict[str, Any]] = getattr(ctx.record, "amendments", {})
    return [
        (
            a,
            f"{a} (against version {d['base_version']}"
            + (f", {label(d['decision'], DECISION_LABELS).lower()})" if d["decision"] else ")"),
        )
        for a, d in amendments.items()
        if d["decision"] in (None, "no_decision")
    ]


def _decision_fields(ctx: Ctx) -> list[Field]:
    return [
        Field("amendment_id", "Amendment", "select", required=True, options=_undecided(ctx)),
        Field(
            "decision",
            "Decision",
            "radios",
            required=True,
            options=_choices(DECISIONS, DECISION_LABELS),
        ),
        Field(
            "consensus",
            "Consensus",
            "radios",
            required=True,
            options=_choices(CONSENSUS_STATES, CONSENSUS_LABELS),
        ),
        Field(
            "dissenting_orgs",
            "Dissenting organisations",
            "checkboxes",
            options=_orgs(ctx),
            hint="Tick each organisation that dissented. None for a decision taken at a "
            "non-attributed, Chatham House Rule or private meeting: it attributes no one "
            "(the note may say there was dissent, without naming who).",
        ),
        Field(
            "meeting_id",
            "Decided at meeting",
            "select",
            options=_meetings(ctx, held=True),
            blank="Not at a meeting",
        ),
        Field("note", "Note", "textarea", hint=""),
    ]


def _decide_amendment(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.decide_amendment(
        str(ctx.record_id),
        amendment_id=v.get("amendment_id"),
        decision=v.get("decision"),
        consensus=v.get("consensus"),
        dissenting_orgs=v.all("dissenting_orgs"),
        meeting_id=v.opt("meeting_id"),
        note=v.get("note"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


def _agreed(ctx: Ctx) -> list[tuple[str, str]]:
    amendments: dict[str, dict[str, Any]] = getattr(ctx.record, "amendments", {})
    current = getattr(ctx.record, "text_version", 0)
    return [
        (a, f"{a} ({len(d['changes'])} change{'s' if len(d['changes']) != 1 else ''})")
        for a, d in amendments.items()
        if d["decision"] == "agreed"
        and d["incorporated_in"] is None
        and d["base_version"] == current
    ]


def _revision_fields(ctx: Ctx) -> list[Field]:
    return [
        Field(
            "amendment_ids",
            "Agreed amendments to incorporate",
            "checkboxes",
            required=True,
            options=_agreed(ctx),
            hint="Agreed amendments proposed against the current text and not yet incorporated.",
        ),
        Field(
            "meeting_id",
            "Revised at meeting",
            "select",
            options=_meetings(ctx, held=True),
            blank="Not at a meeting",
        ),
        Field("note", "Note", "textarea", hint=""),
    ]


def _revise(ctx: Ctx) -> Receipt:
    v = ctx.values
    if not v.all("amendment_ids"):
        raise FormError("Choose at least one agreed amendment", "amendment_ids")
    return ctx.ws.app.revise_proposal(
        str(ctx.record_id),
        base_version=int(getattr(ctx.record, "text_version", 0)),
        amendment_ids=v.all("amendment_ids"),
        note=v.get("note"),
        meeting_id=v.opt("meeting_id"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


def _status_fields(ctx: Ctx) -> list[Field]:
    current = getattr(ctx.record, "status", "draft")
    return [
        Field(
            "new_status",
            "New status",
            "radios",
            required=True,
            options=_choices(STATUS_TRANSITIONS.get(current, ()), STATUS_LABELS),
            hint=f"It is now {label(current, STATUS_LABELS).lower()}; only the moves the "
            "process allows from there are offered.",
        ),
        Field(
            "superseded_by",
            "Superseded by",
            "select",
            options=[p for p in _proposals(ctx, open_only=False) if p[0] != ctx.record_id],
            blank="Not superseded",
            hint="Only when the new status is superseded.",
        ),
        Field("reason", "Reason", "textarea", hint=""),
    ]


def _change_status(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.change_proposal_status(
        str(ctx.record_id),
        new_status=v.get("new_status"),
        reason=v.get("reason"),
        superseded_by=v.opt("superseded_by"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


def _outcome_link_fields(_ctx: Ctx) -> list[Field]:
    return [
        Field(
            "legislation",
            "Legislation",
            required=True,
            maxlength=500,
            hint="For example: Digital Economy Act 2017",
        ),
        Field("provision", "Provision", maxlength=500, hint="For example: Part 5"),
        Field("note", "Note", "textarea", hint=""),
    ]


def _link_outcome(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.link_legislative_outcome(
        str(ctx.record_id),
        legislation=v.get("legislation"),
        provision=v.get("provision"),
        note=v.get("note"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


# Meetings ----------------------------------------------------------------------------------


def _schedule_fields(ctx: Ctx) -> list[Field]:
    return [
        Field("title", "Title", required=True, maxlength=500),
        Field("process_id", "Process", "select", required=True, options=_processes(ctx)),
        Field("strand_id", "Strand", "select", options=_strands(ctx), blank="Whole process"),
        Field("starts_at", "Starts at (UTC)", "datetime", required=True),
        Field(
            "disclosure",
            "Disclosure",
            "radios",
            required=True,
            default="on_record",
            options=_choices(DISCLOSURE_MODES, DISCLOSURE_LABELS),
        ),
        Field("convenor_org", "Convened by", "select", required=True, options=_orgs(ctx)),
    ]


def _schedule(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.schedule_meeting(
        process_id=v.get("process_id"),
        strand_id=v.opt("strand_id"),
        title=v.get("title"),
        starts_at=_time(v, "starts_at", "when it starts"),
        disclosure=v.get("disclosure"),
        convenor_org=v.get("convenor_org"),
        actor=_actor(ctx),
    )


def _held_fields(ctx: Ctx) -> list[Field]:
    return [
        Field("held_at", "Held at (UTC)", "datetime", required=True),
        Field(
            "attending_orgs",
            "Organisations that attended",
            "checkboxes",
            options=_orgs(ctx),
        ),
    ]


def _held(ctx: Ctx) -> Receipt:
    v = ctx.values
    return ctx.ws.app.record_meeting_held(
        str(ctx.record_id),
        attending_orgs=v.all("attending_orgs"),
        held_at=_time(v, "held_at", "when it was held"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


def _outcome_fields(ctx: Ctx) -> list[Field]:
    return [
        Field(
            "items",
            "Outcome items",
            "rows",
            rows=row_count(ctx.values, "items", ITEM_ROWS),
            row_label="Item",
            add_label="Add another item",
            hint="Rows without a kind are left out."
            + (
                f" This is {UNATTRIBUTED_MEETING[ctx.record.disclosure]}, which attributes "
                "no one: its outcome names no organisation."
                if ctx.record is not None
                and getattr(ctx.record, "disclosure", None) in UNATTRIBUTED_MEETING
                else ""
            ),
            columns=[
                Field(
                    "kind",
                    "Kind",
                    "select",
                    options=_choices(OUTCOME_ITEM_KINDS, ITEM_KIND_LABELS),
                    blank="No item",
                ),
                Field("text", "What was decided, agreed or set out", "textarea", wide=True),
                Field(
                    "proposal_id",
                    "About proposal",
                    "select",
                    options=_proposals(ctx, open_only=False),
                    blank="No proposal",
                ),
                Field(
                    "amendment_id",
                    "Amendment",
                    pattern=r"A\d{1,6}",
                    pattern_text="A followed by a number, like A2",
                    hint="Optional, like A2 (needs a proposal).",
                ),
            ],
        )
    ]


def _outcome(ctx: Ctx) -> Receipt:
    items = []
    for i, row in enumerate(
        _rows(ctx.values, "items", ITEM_ROWS, ["kind", "text", "proposal_id", "amendment_id"])
    ):
        if not row["kind"]:
            continue
        if not row["text"]:
            raise FormError(f"Item {i + 1}: write what it records", f"items-{i}-text")
        item = {"kind": row["kind"], "text": row["text"]}
        if row["proposal_id"]:
            item["proposal_id"] = row["proposal_id"]
        if row["amendment_id"]:
            if not row["proposal_id"]:
                raise FormError(
                    f"Item {i + 1}: choose the proposal the amendment belongs to",
                    f"items-{i}-proposal_id",
                )
            item["amendment_id"] = row["amendment_id"]
        items.append(item)
    if not items:
        raise FormError("Record at least one item (choose its kind)", "items-0-kind")
    return ctx.ws.app.record_meeting_outcome(
        str(ctx.record_id), items=items, actor=_actor(ctx), expected_version=ctx.expected
    )


def _minutes_fields(_ctx: Ctx) -> list[Field]:
    return [
        Field(
            "file",
            "Minutes file",
            "file",
            required=True,
            hint="The agreed minutes, exactly as published (PDF, ODT, Word, text …).",
        )
    ]


def _not_under_embargo(ctx: Ctx, sha256: str) -> None:
    """Only publishers and admins may name a document under an unreleased embargo (as in
    ``api.routes.writes``): minutes naming it would publish it before its release."""
    who = ctx.ws.who.principal
    if who.actor.role in PUBLISH:
        return
    embargoed = _access(ctx.ws.request, who, sha256).embargoed
    if embargoed:
        logging.getLogger("ledger.embargo").warning(
            "embargoed document %s (publication %s) named before release by %s of %s (token "
            "%s, workspace): refused",
            sha256,
            ", ".join(embargoed),
            who.actor.id,
            who.actor.org or "no organisation",
            who.token_id,
        )
        raise FormError(
            "This document is under an embargo that has not been released: recording it "
            "would publish it early. A publisher or administrator may release it first.",
            "file",
        )


def _minutes(ctx: Ctx) -> Receipt:
    sha256, size, media_type = _upload(ctx, "file")
    _not_under_embargo(ctx, sha256)
    return ctx.ws.app.agree_minutes(
        str(ctx.record_id),
        sha256=sha256,
        size=size,
        media_type=media_type,
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


# Publications ------------------------------------------------------------------------------


def _publish_fields(ctx: Ctx) -> list[Field]:
    return [
        Field("title", "Title", required=True, maxlength=500),
        Field("process_id", "Process", "select", required=True, options=_processes(ctx)),
        Field(
            "pub_kind",
            "Kind of document",
            "select",
            required=True,
            options=_choices(PUBLICATION_KINDS, PUB_KIND_NAMES),
        ),
        Field(
            "proposal_ids",
            "About proposals",
            "checkboxes",
            options=_proposals(ctx, open_only=False),
            hint="",
        ),
        Field(
            "meeting_ids",
            "About meetings",
            "checkboxes",
            options=_meetings(ctx),
            hint="",
        ),
        Field(
            "file",
            "Document",
            "file",
            required=True,
            hint="Its SHA-256 is shown before anything is recorded.",
        ),
    ]


def publish_upload(ctx: Ctx) -> dict[str, Any]:
    """The first step of publishing: store the file and show its hash to confirm."""
    _upload(ctx, "file")
    return ctx.stored


def _publish(ctx: Ctx) -> Receipt:
    v = ctx.values
    sha256 = v.get("sha256")
    size, media_type = _stored(ctx, sha256)
    return ctx.ws.app.publish(
        process_id=v.get("process_id"),
        pub_kind=v.get("pub_kind"),
        title=v.get("title"),
        sha256=sha256,
        size=size,
        media_type=media_type,
        proposal_ids=v.all("proposal_ids"),
        meeting_ids=v.all("meeting_ids"),
        actor=_actor(ctx),
    )


def _withdraw_fields(_ctx: Ctx) -> list[Field]:
    return [Field("reason", "Reason", "textarea", required=True)]


def _withdraw(ctx: Ctx) -> Receipt:
    return ctx.ws.app.withdraw_publication(
        str(ctx.record_id),
        reason=ctx.values.get("reason"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


def _supersede_fields(ctx: Ctx) -> list[Field]:
    return [
        Field(
            "superseded_by",
            "Superseded by",
            "select",
            required=True,
            options=[p for p in _publications(ctx, state=None) if p[0] != ctx.record_id],
        ),
        Field("reason", "Reason", "textarea", hint=""),
    ]


def _supersede(ctx: Ctx) -> Receipt:
    return ctx.ws.app.supersede_publication(
        str(ctx.record_id),
        superseded_by=ctx.values.get("superseded_by"),
        reason=ctx.values.get("reason"),
        actor=_actor(ctx),
        expected_version=ctx.expected,
    )


# Corrections -------------------------------------------------------------------------------


def _correction_fields(_ctx: Ctx) -> list[Field]:
    return [
        Field(
            "corrects_index",
            "Entry to correct (log index)",
            "number",
            required=True,
            pattern=r"\d{1,15}",
            pattern_text="a whole number",
        ),
        Field("reason", "Reason", "textarea", required=True),
        Field(
            "correction",
            "Correction (JSON object)",
            "textarea",
            required=True,
            hint='What the entry should have said, as a JSON object, like {"title": "…"}.',
        ),
    ]


def _correct(ctx: Ctx) -> Receipt:
    v = ctx.values
    index = v.get("corrects_index")
    if not re.fullmatch(r"\d{1,15}", index):
        raise FormError("Enter the log index as a whole number", "corrects_index")
    try:
        correction = json.loads(v.get("correction"))
    except ValueError:
        raise FormError("The correction must be valid JSON", "correction") from None
    if not isinstance(correction, dict):
        raise FormError("The correction must be a JSON object ({…})", "correction")
    return ctx.ws.app.record_correction(
        corrects_index=int(index),
        reason=v.get("reason"),
        correction=correction,
        actor=_actor(ctx),
    )


# The forms ---------------------------------------------------------------------------------

_PROPOSAL_PICK: Callable[[Ctx], list[tuple[str, str]]] = _proposals

FORMS: dict[str, Spec] = {
    s.slug: s
    for s in [
        Spec(
            "start-process",
            "Start a process",
            "Process",
            RECORD,
            _process_fields,
            _start_process,
            "Start recording an open policy process.",
            button="Start process",
        ),
        Spec(
            "add-strand",
            "Add a strand",
            "Process",
            RECORD,
            _part_fields("strand"),
            _add_strand,
            "Add a policy strand to the process.",
            subject="process",
            button="Add strand",
            pick=_processes,
        ),
        Spec(
            "start-phase",
            "Start a phase",
            "Process",
            RECORD,
            _part_fields("phase"),
            _start_phase,
            "Move the process into a new phase.",
            subject="process",
            button="Start phase",
            pick=_processes,
        ),
        Spec(
            "register-organisation",
            "Register an organisation",
            "Organisations",
            RECORD,
            _organisation_fields,
            _register_organisation,
            "A participating organisation.",
            button="Register organisation",
        ),
        Spec(
            "add-membership",
            "Add a membership",
            "Organisations",
            RECORD,
            _membership_fields,
            _add_membership,
            "An organisation joins a strand or group.",
            subject="organisation",
            button="Add membership",
            pick=_orgs,
        ),
        Spec(
            "end-membership",
            "End a membership",
            "Organisations",
            RECORD,
            _end_membership_fields,
            _end_membership,
            "An organisation leaves a strand or group.",
            subject="organisation",
            button="End membership",
            pick=_orgs,
        ),
        Spec(
            "table-proposal",
            "Table a proposal",
            "Proposals",
            RECORD,
            _table_fields,
            _table_proposal,
            "A new proposal with sectioned text (text version 1).",
            button="Table proposal",
        ),
        Spec(
            "propose-amendment",
            "Propose an amendment",
            "Proposals",
            RECORD,
            _amendment_fields,
            _propose_amendment,
            "Changes against the proposal's current text, previewed before recording.",
            subject="proposal",
            button="Propose amendment",
            preview=True,
            pick=_proposals,
        ),
        Spec(
            "decide-amendment",
            "Decide an amendment",
            "Proposals",
            RECORD,
            _decision_fields,
            _decide_amendment,
            "The decision, consensus state and any dissent.",
            subject="proposal",
            button="Record decision",
            pick=_proposals,
        ),
        Spec(
            "revise-proposal",
            "Revise a proposal",
            "Proposals",
            RECORD,
            _revision_fields,
            _revise,
            "Consolidate agreed amendments into the next text version.",
            subject="proposal",
            button="Record revision",
            pick=_proposals,
        ),
        Spec(
            "change-status",
            "Change a proposal's status",
            "Proposals",
            RECORD,
            _status_fields,
            _change_status,
            "Move a proposal on (only allowed moves).",
            subject="proposal",
            button="Change status",
            pick=_proposals,
        ),
        Spec(
            "link-legislation",
            "Link a legislative outcome",
            "Proposals",
            RECORD,
            _outcome_link_fields,
            _link_outcome,
            "The legislation that carried a proposal.",
            subject="proposal",
            button="Link legislation",
            pick=lambda ctx: _proposals(ctx, open_only=False),
        ),
        Spec(
            "schedule-meeting",
            "Schedule a meeting",
            "Meetings",
            RECORD,
            _schedule_fields,
            _schedule,
            "A meeting with its disclosure mode.",
            button="Schedule meeting",
        ),
        Spec(
            "record-attendance",
            "Record a meeting held",
            "Meetings",
            RECORD,
            _held_fields,
            _held,
            "That a meeting took place, and who attended.",
            subject="meeting",
            button="Record meeting held",
            pick=lambda ctx: _meetings(ctx, held=False),
        ),
        Spec(
            "record-outcome",
            "Record meeting outcomes",
            "Meetings",
            RECORD,
            _outcome_fields,
            _outcome,
            "Decisions, actions, agreements, disagreements and options.",
            subject="meeting",
            button="Record outcomes",
            pick=lambda ctx: _meetings(ctx, held=True),
        ),
        Spec(
            "agree-minutes",
            "Agree minutes",
            "Meetings",
            RECORD,
            _minutes_fields,
            _minutes,
            "Upload the agreed minutes; the log records their SHA-256.",
            subject="meeting",
            button="Record agreed minutes",
            multipart=True,
            pick=lambda ctx: _meetings(ctx, held=True),
        ),
        Spec(
            "publish",
            "Publish a document",
            "Publications",
            PUBLISH,
            _publish_fields,
            _publish,
            "Upload a document; check its SHA-256, then publish.",
            button="Upload and check",
            multipart=True,
            confirm=True,
        ),
        Spec(
            "withdraw-publication",
            "Withdraw a publication",
            "Publications",
            PUBLISH,
            _withdraw_fields,
            _withdraw,
            "Its record and hash stay in the log.",
            subject="publication",
            button="Withdraw publication",
            pick=_publications,
        ),
        Spec(
            "supersede-publication",
            "Supersede a publication",
            "Publications",
            PUBLISH,
            _supersede_fields,
            _supersede,
            "Mark a publication superseded by a later one.",
            subject="publication",
            button="Supersede publication",
            pick=_publications,
        ),
        Spec(
            "record-correction",
            "Record a correction",
            "Corrections",
            ADMIN,
            _correction_fields,
            _correct,
            "Correct an earlier entry by a new entry.",
            button="Record correction",
        ),
    ]
}

GROUPS = ("Proposals", "Meetings", "Publications", "Organisations", "Process", "Corrections")
