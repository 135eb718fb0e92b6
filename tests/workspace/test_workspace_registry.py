"""The workspace's forms against the command registry (ledger.domain): each form is a
command's, its fields are a subset of the command's, its choices are values the declaration
allows, and its roles are the command's. Forms are read as a browser gets them."""

from __future__ import annotations

import hashlib
import html
import re

from api.workspace.forms import FORMS
from ledger.domain import COMMANDS
from ledger.domain.fields import Choice, ListOf, Object
from tests.workspace.conftest import SETUP, Desk

FORM_COMMANDS = {
    "start-process": "start_process",
    "add-strand": "add_strand",
    "start-phase": "start_phase",
    "register-organisation": "register_organisation",
    "add-membership": "add_membership",
    "end-membership": "end_membership",
    "table-proposal": "table_proposal",
    "propose-amendment": "propose_amendment",
    "decide-amendment": "decide_amendment",
    "revise-proposal": "revise_proposal",
    "change-status": "change_proposal_status",
    "link-legislation": "link_legislative_outcome",
    "schedule-meeting": "schedule_meeting",
    "record-attendance": "record_meeting_held",
    "record-outcome": "record_meeting_outcome",
    "agree-minutes": "agree_minutes",
    "publish": "publish",
    "withdraw-publication": "withdraw_publication",
    "supersede-publication": "supersede_publication",
    "record-correction": "record_correction",
}
# Commands the workspace has no form for yet (issue 17: every command a role allows).
WITHOUT_FORMS = frozenset(
    {
        "record_individual_sponsor",
        "open_consultation",
        "record_consultation_response",
        "close_consultation",
        "record_consultation_review",
        "record_government_response",
        "embargo_publication",
        "grant_prerelease_access",
        "release_publication",
        "issue_token",
        "revoke_token",
        "erase_person",
    }
)
# Form controls that are not a command's field: the session's CSRF token, the record acted
# on (the command's path id), its version (If-Match), row counts, the browser's hash of an
# upload. An uploaded ``file`` stands for the fields the server fills from the document.
FORM_ONLY = frozenset({"csrf", "record", "expected_version", "client_sha256", "action"})
UPLOAD_FIELDS = frozenset({"sha256", "size", "media_type"})
# Row columns named otherwise in the amendment editor: the section changed or inserted after,
# and the id of an inserted section (both become section_id / after).
RENAMED = {"changes[].section": "changes[].section_id", "changes[].new_id": "changes[].section_id"}

CONTROL = re.compile(r"<(input|select|textarea)\b([^>]*)>", re.S)
ATTR = re.compile(r'(\w+)="([^"]*)"')
ROW = re.compile(r"^([a-z_]+)-\d+-([a-z_]+)$")


def _paths(fields: tuple, prefix: str = "") -> dict[str, object]:  # type: ignore[type-arg]
    found: dict[str, object] = {}
    for f in fields:
        t = f.type
        nested = t.item if isinstance(t, ListOf) else t
        found[prefix + f.name] = f
        if isinstance(nested, Object):
            inner = f"{prefix}{f.name}[]." if isinstance(t, ListOf) else f"{prefix}{f.name}."
            found.update(_paths(nested.fields, inner))
    return found


def _controls(page: str) -> dict[str, set[str]]:
    """Each control's name (row columns as ``items[].kind``) and the values it offers."""
    form = page[page.index('<form method="post"') :] if '<form method="post"' in page else page
    found: dict[str, set[str]] = {}
    selects = re.findall(r'<select\b[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S)
    options = {name: set(re.findall(r'<option value="([^"]*)"', body)) for name, body in selects}
    for _tag, attrs in CONTROL.findall(form):
        a = dict(ATTR.findall(attrs))
        name = a.get("name")
        if name is None or name.endswith("-count"):
            continue
        row = ROW.match(name)
        key = f"{row.group(1)}[].{row.group(2)}" if row else name
        values = found.setdefault(RENAMED.get(key, key), set())
        if a.get("type") in ("radio", "checkbox") and "value" in a:
            values.add(html.unescape(a["value"]))
        values.update(html.unescape(v) for v in options.get(name, set()))
    return found


def test_every_form_is_a_declared_command_with_a_subset_of_its_fields(desk: Desk) -> None:
    s = desk.sample
    sha = hashlib.sha256(b"report").hexdigest()
    publication = desk.app.publish(
        process_id=s.process_id,
        pub_kind="report",
        title="Interim report",
        sha256=sha,
        size=6,
        media_type="text/plain",
        actor=SETUP,
    ).subject_id
    desk.caught_up()
    desk.sign_in("admin")
    records = {
        "proposal": s.proposal_id,
        "meeting": s.meeting_id,
        "publication": publication,
        "organisation": s.org_ids[0],
        "process": s.process_id,
    }
    assert set(FORMS) == set(FORM_COMMANDS)
    assert set(COMMANDS) - set(FORM_COMMANDS.values()) == WITHOUT_FORMS
    for slug, spec in FORMS.items():
        c = COMMANDS[FORM_COMMANDS[slug]]
        assert spec.roles == c.roles, slug
        assert spec.subject is None or spec.subject == c.kind, slug
        assert (spec.subject is not None) == bool(c.path_params), slug
        params = {"record": records[spec.subject]} if spec.subject else {}
        controls = _controls(desk.form(slug, **params))
        declared = _paths(c.fields)
        names = set(controls) - FORM_ONLY
        assert names, slug
        if "file" in names:
            names.discard("file")
            assert set(declared) >= UPLOAD_FIELDS, slug
        assert names <= set(declared), (slug, sorted(names - set(declared)))
        for name in names:
            t = declared[name].type  # type: ignore[attr-defined]
            allowed = t.item if isinstance(t, ListOf) else t
            if isinstance(allowed, Choice):
                offered = controls[name] - {""}
                assert offered, (slug, name)
                assert offered <= set(allowed.values), (slug, name, offered)
