"""One declaration per command: its fields and their types, the record it acts on, the
roles it needs, its HTTP route, and what may be corrected later.

The fields are the command's arguments as ``ledger record --json`` and ``ledger import``
take them (and as :class:`ledger.application.LedgerApplication` takes them as keywords).
Over HTTP a field comes from where its ``http`` says: the ``body`` (default), the ``path``,
the ``if-match`` header (``expected_version``), an ``upload`` (filled by the server from the
document an HTTP body names by ``sha256``; see :attr:`Command.http_body`), or ``inline`` (a
nested object whose fields are the body itself).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.domain.fields import (
    SHORT,
    TEXT,
    Boolean,
    Bytes,
    Choice,
    DateTime,
    Field,
    FieldError,
    FieldType,
    Integer,
    JsonObject,
    ListOf,
    Object,
    PersonId,
    Ref,
    Sha256,
    Slug,
    Text,
    Uuid,
    check_object,
)
from ledger.domain.vocabulary import (
    CONSENSUS_STATES,
    DECISIONS,
    DISCLOSURE_MODES,
    GOVERNMENT_RESPONSES,
    ORGANISATION_KINDS,
    OUTCOME_ITEM_KINDS,
    PUBLICATION_KINDS,
    TOKEN_ROLES,
)
from ledger.errors import InvalidInputError

__all__ = [
    "COMMANDS",
    "CONSENSUS_STATES",
    "DECISIONS",
    "DISCLOSURE_MODES",
    "GOVERNMENT_RESPONSES",
    "ORGANISATION_KINDS",
    "OUTCOME_ITEM_KINDS",
    "PROPOSAL_STATUSES",
    "PUBLICATION_KINDS",
    "TOKEN_ROLES",
    "Command",
    "FieldError",
    "command",
    "validate",
]

PROPOSAL_STATUSES = (
    "discussion",
    "consultation",
    "revised",
    "recommended",
    "enacted",
    "withdrawn",
    "superseded",
)
"""The statuses a proposal can be moved to (``draft`` is only where it starts)."""

RECORDER = frozenset({"recorder", "admin"})
PUBLISHER = frozenset({"publisher", "admin"})
ADMIN = frozenset({"admin"})

ALL_CHANNELS = frozenset({"api", "record", "import"})

_PATH_PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True, slots=True)
class Command:
    """A command's declaration."""

    name: str
    summary: str
    kind: str  # the record kind it creates or acts on (the entry's subject kind)
    creates: bool
    roles: frozenset[str]
    path: str
    fields: tuple[Field, ...]
    method: str = "POST"
    http_body: tuple[Field, ...] = ()  # body fields over HTTP that stand for upload fields
    channels: frozenset[str] = ALL_CHANNELS  # api, record (`ledger record`), import
    status: int | None = None  # its HTTP success status, when not 201 (creates) or 200

    @property
    def http_status(self) -> int:
        if self.status is not None:
            return self.status
        return 201 if self.creates else 200

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PATH_PARAM.findall(self.path))

    @property
    def correctable(self) -> tuple[str, ...]:
        """The fields a later correction may change."""
        return tuple(f.name for f in self.fields if f.correctable)

    def body_fields(self) -> tuple[Field, ...]:
        """The fields of its HTTP request body."""
        found: list[Field] = []
        for f in self.fields:
            if f.http == "body":
                found.append(f)
            elif f.http == "inline" and isinstance(f.type, Object):
                found.extend(f.type.fields)
        return (*found, *self.http_body)

    def validate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``args`` checked against the declaration, with defaults filled in."""
        if not isinstance(args, Mapping):
            raise InvalidInputError(f"the arguments of {self.name} must be an object")
        return check_object("", self.fields, args, defaults=True, title=self.name)

    def as_json(self) -> dict[str, Any]:
        from ledger.domain.fields import _field_json

        return {
            "name": self.name,
            "summary": self.summary,
            "kind": self.kind,
            "creates": self.creates,
            "roles": sorted(self.roles),
            "method": self.method,
            "path": self.path,
            "channels": sorted(self.channels),
            "fields": [{**_field_json(f), "http": f.http} for f in self.fields],
            "http_body": [_field_json(f) for f in self.http_body],
        }


# Field builders ------------------------------------------------------------------------------


def _line(
    name: str,
    description: str,
    *,
    max_length: int = SHORT,
    default: str | None = None,
    correctable: bool = True,
) -> Field:
    """One line of text; required unless given a default."""
    return Field(
        name,
        Text(max_length=max_length, blank=default == ""),
        description,
        required=default is None,
        default=default,
        correctable=correctable,
    )


def _long(
    name: str,
    description: str,
    *,
    default: str | None = None,
    nullable: bool = False,
) -> Field:
    """Multi-line text (line breaks and tabs allowed); required unless given a default."""
    optional = default is not None or nullable
    return Field(
        name,
        Text(max_length=TEXT, multiline=True, blank=default == ""),
        description,
        required=not optional,
        default=default,
        nullable=nullable,
        correctable=True,
    )


def _ref(
    name: str, kind: str, description: str, *, optional: bool = False, http: str = "body"
) -> Field:
    return Field(
        name,
        Ref(kind),
        description,
        required=not optional,
        default=None,
        nullable=optional,
        http=http,
    )


def _refs(name: str, kind: str, description: str, *, max_items: int = 500) -> Field:
    return Field(
        name,
        ListOf(Ref(kind), max_items=max_items),
        description,
        required=False,
        default=(),
    )


def _choice(
    name: str, values: tuple[str, ...], description: str, *, default: str | None = None
) -> Field:
    return Field(name, Choice(values), description, required=default is None, default=default)


def _subject(name: str, kind: str) -> Field:
    return _ref(name, kind, f"the {kind.replace('_', ' ')} it acts on (in the path)", http="path")


_NEW_ID = Field(
    "id",
    Uuid(),
    "the new record's id; the ledger chooses one when it is left out",
    required=False,
    default=None,
    nullable=True,
)
_EXPECTED = Field(
    "expected_version",
    Integer(minimum=0, maximum=2**31),
    "refuse the command (409) unless the record is at this version (HTTP: the If-Match header)",
    required=False,
    default=None,
    nullable=True,
    http="if-match",
)
_KEY = Text(max_length=100)  # an id the client chooses for a nested item (section, question)
_MEDIA_TYPE = Field(
    "media_type",
    Text(max_length=200),
    "the document's media type (HTTP: that of the uploaded document)",
    http="upload",
)
_SIZE = Field(
    "size",
    Integer(minimum=0, maximum=2**53),
    "the document's size in bytes (HTTP: that of the uploaded document)",
    http="upload",
)
_UPLOADED = Field(
    "sha256",
    Sha256(),
    "SHA-256 of the document already uploaded with POST /documents",
)


def _opt_line(name: str, description: str) -> Field:
    return Field(
        name,
        Text(max_length=SHORT),
        description,
        required=False,
        default=None,
        nullable=True,
        correctable=True,
    )


_SECTION = Object(
    (
        Field("id", _KEY, "the section's id, unique in the proposal"),
        _line("heading", "the section's heading", default=""),
        _long("text", "the section's text", default=""),
    ),
    title="section",
)
_SECTIONS = ListOf(_SECTION, min_items=1, max_items=500)
_CHANGE = Object(
    (
        Field("op", Choice(("replace", "insert", "delete")), "what the change does"),
        Field("section_id", _KEY, "the section it replaces, inserts or deletes"),
        Field(
            "after",
            Text(max_length=100, blank=True),
            "insert: the section it goes after (empty: first)",
            required=False,
        ),
        Field(
            "heading",
            Text(max_length=SHORT, blank=True),
            "replace or insert: the heading",
            required=False,
        ),
        Field(
            "text",
            Text(max_length=TEXT, multiline=True, blank=True),
            "replace or insert: the text",
            required=False,
        ),
    ),
    title="change",
)
_ITEM = Object(
    (
        Field("kind", Choice(OUTCOME_ITEM_KINDS), "what the item records"),
        _long("text", "what was decided, agreed, disagreed, actioned or left open"),
        Field(
            "consensus",
            Choice(CONSENSUS_STATES),
            "the consensus state reached",
            required=False,
        ),
        Field(
            "orgs",
            ListOf(Ref("organisation"), max_items=500, unique=True),
            "organisations it names (only at an on-record meeting)",
            required=False,
            default=(),
        ),
        _ref("proposal_id", "proposal", "the proposal it is about", optional=True),
        _ref(
            "amendment_id",
            "amendment",
            "the amendment it is about (needs proposal_id)",
            optional=True,
        ),
    ),
    title="outcome item",
)
_PERSON = Object(
    (
        Field("person_id", PersonId(), "the person's opaque id (stays after erasure)"),
        _line("name", "the person's name (personal data: sealed)", correctable=False),
        _opt_line("role", "the person's role (sealed)"),
        _opt_line("org", "the person's organisation, as text (sealed)"),
    ),
    title="person",
)
_SPONSOR = Object(
    (
        Field("person_id", PersonId(), "the person's opaque id (stays after erasure)"),
        _line("name", "the person's name (personal data: sealed)", correctable=False),
        _opt_line("role", "the person's role (sealed)"),
    ),
    title="sponsor",
)
_RESPONDENT = Object(
    (
        Field("person_id", PersonId(), "the person's opaque id (stays after erasure)"),
        _line("name", "the person's name (personal data: sealed)", correctable=False),
        _opt_line("email", "the person's e-mail address (sealed)"),
    ),
    title="respondent",
)


def _items(what: str, *, least: int) -> ListOf:
    return ListOf(
        Object(
            (
                Field("id", _KEY, f"the {what}'s id, unique in the consultation"),
                _long("text", f"the {what}'s text"),
            ),
            title=what,
        ),
        min_items=least,
        max_items=500,
    )


_ANSWERS = ListOf(
    Object(
        (
            Field("question_id", _KEY, "the question it answers"),
            _long("text", "the answer"),
        ),
        title="answer",
    ),
    min_items=1,
    max_items=500,
)


def _f(name: str, type_: FieldType, description: str, **kw: Any) -> Field:
    return Field(name, type_, description, **kw)


# The declarations ----------------------------------------------------------------------------

_DECLARED: tuple[Command, ...] = (
    # process
    Command(
        "start_process",
        "Start recording an open policy process.",
        "process",
        True,
        RECORDER,
        "/processes",
        (
            _line("title", "the process's title"),
            _long("summary", "what the process is about", default=""),
            _NEW_ID,
        ),
    ),
    Command(
        "add_strand",
        "Add a policy strand to the process.",
        "process",
        False,
        RECORDER,
        "/processes/{process_id}/strands",
        (
            _subject("process_id", "process"),
            _f("strand_id", Slug(), "the strand's id, used in its URL"),
            _line("title", "the strand's title"),
            _long("summary", "what the strand covers", default=""),
            _EXPECTED,
        ),
    ),
    Command(
        "start_phase",
        "Move the process into a new phase.",
        "process",
        False,
        RECORDER,
        "/processes/{process_id}/phases",
        (
            _subject("process_id", "process"),
            _f("phase_id", Slug(), "the phase's id"),
            _line("title", "the phase's title"),
            _long("summary", "what happens in the phase", default=""),
            _EXPECTED,
        ),
    ),
    # organisations
    Command(
        "register_organisation",
        "Register a participating organisation.",
        "organisation",
        True,
        RECORDER,
        "/organisations",
        (
            _line("name", "the organisation's name"),
            _choice("org_kind", ORGANISATION_KINDS, "what kind of organisation it is"),
            _NEW_ID,
        ),
    ),
    Command(
        "add_membership",
        "Record that an organisation joined a strand or group of the process.",
        "organisation",
        False,
        RECORDER,
        "/organisations/{organisation_id}/memberships",
        (
            _subject("organisation_id", "organisation"),
            _ref("process_id", "process", "the process"),
            _f("group", Slug(), "the strand or group it joins"),
            _line("role", "its role in the group", default="member"),
            _EXPECTED,
        ),
    ),
    Command(
        "end_membership",
        "Record that an organisation left a strand or group.",
        "organisation",
        False,
        RECORDER,
        "/organisations/{organisation_id}/memberships/end",
        (
            _subject("organisation_id", "organisation"),
            _ref("process_id", "process", "the process"),
            _f("group", Ref("group", max_length=SHORT), "the strand or group it leaves"),
            _long("reason", "why it left", default=""),
            _EXPECTED,
        ),
    ),
    # proposals
    Command(
        "table_proposal",
        "Table a new proposal with sectioned text (text version 1).",
        "proposal",
        True,
        RECORDER,
        "/proposals",
        (
            _ref("process_id", "process", "the process"),
            _ref("strand_id", "strand", "the strand it belongs to"),
            _line("title", "the proposal's title"),
            _f("sections", _SECTIONS, "the text, section by section", correctable=True),
            _ref("sponsor_org", "organisation", "the sponsoring organisation"),
            _ref(
                "meeting_id", "meeting", "the (on-record) meeting it was tabled at", optional=True
            ),
            _NEW_ID,
        ),
    ),
    Command(
        "propose_amendment",
        "Propose an amendment against a named text version of a proposal.",
        "proposal",
        False,
        RECORDER,
        "/proposals/{proposal_id}/amendments",
        (
            _subject("proposal_id", "proposal"),
            _f("base_version", Integer(1, 2**31), "the text version the changes are against"),
            _f("changes", ListOf(_CHANGE, min_items=1, max_items=500), "the changes"),
            _long("rationale", "why", default=""),
            _ref(
                "proposer_org",
                "organisation",
                "the proposing organisation; left out (only) when raised at a meeting that "
                "attributes no one",
                optional=True,
            ),
            _ref("meeting_id", "meeting", "the meeting it was raised at", optional=True),
            _EXPECTED,
        ),
    ),
    Command(
        "decide_amendment",
        "Record the decision on an amendment, its consensus state and any dissent.",
        "proposal",
        False,
        RECORDER,
        "/proposals/{proposal_id}/amendments/{amendment_id}/decision",
        (
            _subject("proposal_id", "proposal"),
            _ref("amendment_id", "amendment", "the amendment decided (in the path)", http="path"),
            _choice("decision", DECISIONS, "the decision"),
            _choice("consensus", CONSENSUS_STATES, "the consensus state"),
            _f(
                "dissenting_orgs",
                ListOf(Ref("organisation"), max_items=500, unique=True),
                "organisations that dissent (only at an on-record meeting)",
                required=False,
                default=(),
            ),
            _ref("meeting_id", "meeting", "the meeting it was decided at", optional=True),
            _long("note", "a note on the decision", default=""),
            _EXPECTED,
        ),
    ),
    Command(
        "revise_proposal",
        "Consolidate agreed amendments (or new text) into the next text version.",
        "proposal",
        False,
        RECORDER,
        "/proposals/{proposal_id}/revisions",
        (
            _subject("proposal_id", "proposal"),
            _f("base_version", Integer(1, 2**31), "the current text version being revised"),
            _refs("amendment_ids", "amendment", "the agreed amendments it incorporates"),
            _f(
                "sections",
                _SECTIONS,
                "new text, section by section (instead of or after the amendments)",
                required=False,
                nullable=True,
                correctable=True,
            ),
            _long("note", "a note on the revision", default=""),
            _ref("meeting_id", "meeting", "the meeting it was revised at", optional=True),
            _EXPECTED,
        ),
    ),
    Command(
        "change_proposal_status",
        "Move a proposal to a new status (discussion, consultation … enacted).",
        "proposal",
        False,
        RECORDER,
        "/proposals/{proposal_id}/status",
        (
            _subject("proposal_id", "proposal"),
            _choice("new_status", PROPOSAL_STATUSES, "the status it moves to"),
            _long("reason", "why", default=""),
            _ref(
                "superseded_by",
                "proposal",
                "the proposal superseding it (exactly when new_status is superseded)",
                optional=True,
            ),
            _EXPECTED,
        ),
    ),
    Command(
        "link_legislative_outcome",
        "Link a proposal to the legislation that carried it (an Act and section).",
        "proposal",
        False,
        RECORDER,
        "/proposals/{proposal_id}/legislative-outcomes",
        (
            _subject("proposal_id", "proposal"),
            _line("legislation", "the Act (or other legislation)"),
            _line("provision", "its section or provision", default=""),
            _long("note", "a note", default=""),
            _EXPECTED,
        ),
    ),
    Command(
        "record_individual_sponsor",
        "Record an individual who sponsors a proposal (personal data: sealed).",
        "proposal",
        False,
        RECORDER,
        "/proposals/{proposal_id}/individual-sponsors",
        (
            _subject("proposal_id", "proposal"),
            _f("person", _SPONSOR, "the individual (over HTTP: the body itself)", http="inline"),
            _EXPECTED,
        ),
    ),
    # meetings
    Command(
        "schedule_meeting",
        "Schedule a meeting with its disclosure mode.",
        "meeting",
        True,
        RECORDER,
        "/meetings",
        (
            _ref("process_id", "process", "the process"),
            _ref("strand_id", "strand", "the strand it belongs to", optional=True),
            _line("title", "the meeting's title"),
            _f("starts_at", DateTime(), "when it starts", correctable=True),
            _choice(
                "disclosure", DISCLOSURE_MODES, "what the log may say of it", default="on_record"
            ),
            _ref("convenor_org", "organisation", "the convening organisation"),
            _NEW_ID,
        ),
    ),
    Command(
        "record_meeting_held",
        "Record that a meeting took place, and which organisations attended.",
        "meeting",
        False,
        RECORDER,
        "/meetings/{meeting_id}/held",
        (
            _subject("meeting_id", "meeting"),
            _f(
                "attending_orgs",
                ListOf(Ref("organisation"), min_items=1, max_items=1000, unique=True),
                "the organisations that attended",
            ),
            _f("held_at", DateTime(), "when it was held", correctable=True),
            _EXPECTED,
            _f(
                "attending_people",
                ListOf(_PERSON, max_items=500),
                "individuals who attended (on-record and non-attributed meetings; sealed)",
                required=False,
                nullable=True,
            ),
        ),
    ),
    Command(
        "record_meeting_outcome",
        "Record decisions, actions, agreements, disagreements and options of a meeting.",
        "meeting",
        False,
        RECORDER,
        "/meetings/{meeting_id}/outcomes",
        (
            _subject("meeting_id", "meeting"),
            _f("items", ListOf(_ITEM, min_items=1, max_items=500), "the outcome's items"),
            _EXPECTED,
        ),
    ),
    Command(
        "agree_minutes",
        "Record the agreed minutes of a meeting by the SHA-256 of the document.",
        "meeting",
        False,
        RECORDER,
        "/meetings/{meeting_id}/minutes",
        (
            _subject("meeting_id", "meeting"),
            _f("sha256", Sha256(), "SHA-256 of the minutes (HTTP: uploaded first)"),
            _SIZE,
            _MEDIA_TYPE,
            _EXPECTED,
        ),
    ),
    # consultations
    Command(
        "open_consultation",
        "Open a consultation on its questions and documents (uploaded first, by SHA-256).",
        "consultation",
        True,
        RECORDER,
        "/consultations",
        (
            _ref("process_id", "process", "the process"),
            _line("title", "the consultation's title"),
            _f("questions", _items("question", least=1), "the questions", correctable=True),
            _f(
                "documents",
                ListOf(Sha256(), max_items=100, unique=True),
                "SHA-256 of documents already uploaded with POST /documents",
                required=False,
                default=(),
            ),
            _f("closes_at", DateTime(utc=True), "when it closes", correctable=True),
            _NEW_ID,
        ),
    ),
    Command(
        "record_consultation_response",
        "Record a response from an organisation (public) or an individual (sealed).",
        "consultation",
        False,
        RECORDER,
        "/consultations/{consultation_id}/responses",
        (
            _subject("consultation_id", "consultation"),
            _f("answers", _ANSWERS, "the answers, one per question answered"),
            _ref(
                "org_id",
                "organisation",
                "the responding organisation (its answers are public); or individual",
                optional=True,
            ),
            _f(
                "individual",
                _RESPONDENT,
                "an individual respondent (sealed; answers public only with consent)",
                required=False,
                nullable=True,
            ),
            _f(
                "consent_to_publish",
                Boolean(),
                "whether the individual consents to their answers being published",
                required=False,
                default=False,
            ),
            _EXPECTED,
        ),
    ),
    Command(
        "close_consultation",
        "Close a consultation: no more responses.",
        "consultation",
        False,
        RECORDER,
        "/consultations/{consultation_id}/close",
        (
            _subject("consultation_id", "consultation"),
            _long("note", "a note", default=""),
            _EXPECTED,
        ),
    ),
    Command(
        "record_consultation_review",
        "Record an external review (e.g. an advisory group's) of a closed consultation.",
        "consultation",
        False,
        RECORDER,
        "/consultations/{consultation_id}/review",
        (
            _subject("consultation_id", "consultation"),
            _ref("reviewer_org", "organisation", "the reviewing organisation"),
            _f(
                "findings",
                ListOf(Text(max_length=TEXT, multiline=True), min_items=1, max_items=500),
                "the review's findings",
                correctable=True,
            ),
            _f(
                "recommendations",
                _items("recommendation", least=0),
                "the review's recommendations",
                required=False,
                default=(),
                correctable=True,
            ),
            _EXPECTED,
        ),
    ),
    Command(
        "record_government_response",
        "Record the government's response to one of the review's recommendations.",
        "consultation",
        False,
        RECORDER,
        "/consultations/{consultation_id}/government-response",
        (
            _subject("consultation_id", "consultation"),
            _ref("recommendation_id", "recommendation", "the recommendation responded to"),
            _choice("response", GOVERNMENT_RESPONSES, "the response"),
            _long("text", "the response's text"),
            _EXPECTED,
        ),
    ),
    # publications
    Command(
        "publish",
        "Record a publication by the SHA-256, size and media type of its exact bytes.",
        "publication",
        True,
        PUBLISHER,
        "/publications",
        (
            _ref("process_id", "process", "the process"),
            _choice("pub_kind", PUBLICATION_KINDS, "what kind of publication it is"),
            _line("title", "the publication's title"),
            _f("sha256", Sha256(), "SHA-256 of the document (HTTP: uploaded first)"),
            _SIZE,
            _MEDIA_TYPE,
            _refs("proposal_ids", "proposal", "proposals it is about"),
            _refs("meeting_ids", "meeting", "meetings it is about"),
            _NEW_ID,
        ),
    ),
    Command(
        "embargo_publication",
        "Record a publication under embargo: only a salted commitment to its bytes.",
        "publication",
        True,
        PUBLISHER,
        "/publications/embargoed",
        (
            _ref("process_id", "process", "the process"),
            _choice("pub_kind", PUBLICATION_KINDS, "what kind of publication it is"),
            _line("title", "the publication's title"),
            _f("document", Bytes(), "the document's bytes (HTTP: the uploaded one)", http="upload"),
            _f("release_at", DateTime(utc=True), "the scheduled release", correctable=True),
            _refs("proposal_ids", "proposal", "proposals it is about"),
            _refs("meeting_ids", "meeting", "meetings it is about"),
            _NEW_ID,
        ),
        http_body=(_UPLOADED,),
        channels=frozenset({"api", "import"}),
    ),
    Command(
        "grant_prerelease_access",
        "Record that an organisation may see an embargoed document before its release.",
        "publication",
        False,
        PUBLISHER,
        "/publications/{publication_id}/prerelease-access",
        (
            _subject("publication_id", "publication"),
            _ref("organisation_id", "organisation", "the organisation granted access"),
            _line("authorised_by", "who authorised the access"),
            _long("reason", "why"),
            _EXPECTED,
        ),
    ),
    Command(
        "release_publication",
        "Release an embargoed publication: reveal its SHA-256, size, media type and salt.",
        "publication",
        False,
        PUBLISHER,
        "/publications/{publication_id}/release",
        (
            _subject("publication_id", "publication"),
            _f("document", Bytes(), "the document's bytes (HTTP: the uploaded one)", http="upload"),
            _MEDIA_TYPE,
            _long(
                "override_reason",
                "admins only: why it is released before release_at",
                nullable=True,
            ),
            _EXPECTED,
        ),
        http_body=(_UPLOADED,),
        channels=frozenset({"api"}),
    ),
    Command(
        "withdraw_publication",
        "Withdraw a publication; its record and hash stay in the log.",
        "publication",
        False,
        PUBLISHER,
        "/publications/{publication_id}/withdrawal",
        (
            _subject("publication_id", "publication"),
            _long("reason", "why"),
            _EXPECTED,
        ),
    ),
    Command(
        "supersede_publication",
        "Mark a publication as superseded by a later one.",
        "publication",
        False,
        PUBLISHER,
        "/publications/{publication_id}/supersession",
        (
            _subject("publication_id", "publication"),
            _ref("superseded_by", "publication", "the later publication"),
            _long("reason", "why", default=""),
            _EXPECTED,
        ),
    ),
    # corrections, tokens, people (admin)
    Command(
        "record_correction",
        "Correct an earlier entry by a new entry pointing at it.",
        "correction",
        True,
        ADMIN,
        "/corrections",
        (
            _f("corrects_index", Integer(0, 2**53), "the index of the entry corrected"),
            _long("reason", "why"),
            _f("correction", JsonObject(), "the corrected fields and their new values"),
            _NEW_ID,
        ),
    ),
    Command(
        "issue_token",
        "Issue an official an API token (shown once, never stored).",
        "access_token",
        True,
        ADMIN,
        "/tokens",
        (
            _line("principal", "who holds it", correctable=False),
            _f(
                "org",
                Text(max_length=100, blank=True),
                "the id of the holder's organisation (empty: none)",
                required=False,
                default="",
            ),
            _choice("role", TOKEN_ROLES, "what it may do"),
            _long("note", "a note", default=""),
        ),
        channels=frozenset({"api", "record"}),
    ),
    Command(
        "revoke_token",
        "Revoke an API token: it stops working at once, on every replica.",
        "access_token",
        False,
        ADMIN,
        "/tokens/{token_id}/revocation",
        (
            _subject("token_id", "access_token"),
            _long("reason", "why"),
            _EXPECTED,
        ),
        channels=frozenset({"api", "record"}),
    ),
    Command(
        "erase_person",
        "Erase a person's personal data: destroy their data keys, record person.erased.",
        "person",
        True,
        ADMIN,
        "/people/{person_id}/erasure",
        (
            _f("person_id", PersonId(), "the person (in the path)", http="path"),
            _line("legal_basis", "why, e.g. UK GDPR Art. 17(1)(a)", max_length=TEXT),
            _line("authorised_by", "who authorised it (a role or office)"),
        ),
        channels=frozenset({"api"}),
        status=200,
    ),
)

COMMANDS: dict[str, Command] = {c.name: c for c in _DECLARED}
"""Every command, by name, in the order of the life of a process."""


def command(name: str) -> Command:
    """The declaration of ``name``; InvalidInputError for an unknown command."""
    found = COMMANDS.get(name) if isinstance(name, str) else None
    if found is None:
        raise InvalidInputError(f"unknown command {name!r}; `ledger commands` lists them")
    return found


def validate(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` of command ``name`` checked against its declaration, defaults filled in.

    Raises :class:`~ledger.domain.fields.FieldError` (an InvalidInputError) naming the
    field's path and the rule: ``items[1].kind: must be one of decision, action, …``."""
    return command(name).validate(args)
