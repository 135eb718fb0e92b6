"""The command registry (ledger.domain): it declares exactly the commands the application,
`ledger record`, `ledger import` and the HTTP API accept, field for field; its validator
accepts what its types describe and refuses anything else naming the field; the generated
command reference is current.

Where today's API is laxer than the declaration (no enumeration, no date-time format, no
slug pattern, untyped items), the drift is listed once, in ``API_LAXER``, and the test
fails when one is added or fixed, so the list stays exact until the API is generated from
the registry.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledger.aggregates as agg
from ledger.application import COMMANDS as APPLICATION_COMMANDS
from ledger.application import LedgerApplication
from ledger.bulk import IMPORT_COMMANDS
from ledger.domain import COMMANDS, FieldError, validate
from ledger.domain import commands as declared
from ledger.domain.fields import (
    Boolean,
    Bytes,
    Choice,
    Date,
    DateTime,
    Field,
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
)
from ledger.domain.reference import as_markdown
from ledger.errors import InvalidInputError
from ledger.text import LONG_TEXT_FIELDS

ROOT = Path(__file__).resolve().parents[2]

# (command, field path, what the API lacks): the API accepts more than the declaration.
API_LAXER: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("register_organisation", "org_kind", "enumeration"),
        ("add_strand", "strand_id", "slug pattern"),
        ("start_phase", "phase_id", "slug pattern"),
        ("add_membership", "group", "slug pattern"),
        ("decide_amendment", "decision", "enumeration"),
        ("decide_amendment", "consensus", "enumeration"),
        ("change_proposal_status", "new_status", "enumeration"),
        ("schedule_meeting", "starts_at", "date-time format"),
        ("schedule_meeting", "disclosure", "enumeration"),
        ("record_meeting_held", "held_at", "date-time format"),
        ("record_meeting_held", "attending_orgs", "at least 1 item"),
        ("record_meeting_outcome", "items", "typed items"),
        ("open_consultation", "closes_at", "date-time format"),
        ("record_government_response", "response", "enumeration"),
        ("publish", "pub_kind", "enumeration"),
        ("embargo_publication", "pub_kind", "enumeration"),
        ("embargo_publication", "release_at", "date-time format"),
    }
)
# (command, field): required by the application's signature, optional in the declaration
# (and the API), which gives the application's own empty value as the default.
SIGNATURE_STRICTER = frozenset({("issue_token", "org")})
# Write routes that are not commands: uploading bytes records nothing in the log.
NOT_COMMANDS = frozenset({("POST", "/documents")})


def _app_params(name: str) -> dict[str, inspect.Parameter]:
    params = inspect.signature(getattr(LedgerApplication, name)).parameters
    return {k: v for k, v in params.items() if k not in ("self", "actor")}


def test_the_domain_imports_only_the_standard_library_and_ledger_errors_and_text() -> None:
    """No web framework, no database, no eventsourcing: checked on the source (AST)."""
    allowed = {"ledger.errors", "ledger.text"}
    for source in sorted((ROOT / "ledger" / "domain").glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if name.startswith("ledger.domain") or name in allowed or name == "__future__":
                    continue
                assert top in sys.stdlib_module_names, (source.name, name)


# The registry and the application ------------------------------------------------------------


def test_the_registry_covers_exactly_what_record_import_and_the_application_accept() -> None:
    """`ledger record` takes application.COMMANDS, `ledger import` bulk.IMPORT_COMMANDS; the
    registry declares each, says which channel takes it, and declares nothing else."""
    by_channel = {
        ch: {c.name for c in COMMANDS.values() if ch in c.channels}
        for ch in ("api", "record", "import")
    }
    assert by_channel["record"] == {*APPLICATION_COMMANDS, "record_consultation_response"}
    assert by_channel["import"] == set(IMPORT_COMMANDS)
    assert by_channel["api"] == set(COMMANDS)
    assert len(COMMANDS) == 32
    for name in COMMANDS:
        assert callable(getattr(LedgerApplication, name, None)), name


def test_every_field_is_an_argument_of_the_application_with_its_default() -> None:
    for c in COMMANDS.values():
        params = _app_params(c.name)
        assert [f.name for f in c.fields] == list(params), c.name
        for f in c.fields:
            p = params[f.name]
            app_required = p.default is inspect.Parameter.empty
            if (c.name, f.name) in SIGNATURE_STRICTER:
                assert app_required
                assert not f.required
                continue
            assert f.required == app_required, (c.name, f.name)
            if not f.required:
                expected = list(p.default) if isinstance(p.default, tuple) else p.default
                got = list(f.default) if isinstance(f.default, tuple) else f.default
                assert got == expected, (c.name, f.name)


def test_the_declared_statuses_are_the_reachable_ones() -> None:
    """The enumerations themselves live once, in ledger.domain.vocabulary; the statuses a
    command may move a proposal to are those its rules can reach."""
    reachable = {s for moves in agg.STATUS_TRANSITIONS.values() for s in moves}
    assert set(declared.PROPOSAL_STATUSES) == reachable


def _texts(fields: tuple[Field, ...], parent: str = "") -> Iterator[tuple[str, Text]]:
    for f in fields:
        t = f.type
        if isinstance(t, ListOf):
            t = t.item
        if isinstance(t, Text):
            yield f.name, t
        elif isinstance(t, Object):
            yield from _texts(t.fields, f.name)


def test_multiline_texts_are_the_ones_recording_allows_line_breaks_in() -> None:
    """ledger.text decides at recording time by the field's name; the declaration agrees,
    so nothing the declaration accepts is refused when recorded, and the reverse."""
    for c in COMMANDS.values():
        for name, t in _texts(c.fields):
            if name in ("org", "after", "heading") and not t.multiline:
                continue  # one line both ways
            assert t.multiline == (name in LONG_TEXT_FIELDS), (c.name, name)


def test_correctable_fields_are_never_ids_or_references() -> None:
    for c in COMMANDS.values():
        for f in c.fields:
            if f.correctable:
                assert not isinstance(
                    f.type, Ref | Uuid | Slug | Sha256 | PersonId | Choice | Bytes | Integer
                ), (c.name, f.name)
        assert "title" not in [f.name for f in c.fields] or "title" in c.correctable


# The registry and the HTTP API ---------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from api.app import create_app
    from tests.conftest import make_store

    for store in make_store("sqlite", tmp_path_factory.mktemp("openapi")):
        document: dict[str, Any] = create_app(store.settings).openapi()
        return document
    raise AssertionError("no store")


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref followed and ``X | None`` unwrapped."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return _resolve(doc, {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]})
    return schema


def _api_enum(schema: dict[str, Any]) -> tuple[str, ...] | None:
    if "enum" in schema:
        return tuple(schema["enum"])
    pattern = schema.get("pattern", "")
    if pattern.startswith("^(") and pattern.endswith(")$"):
        return tuple(pattern[2:-2].split("|"))
    return None


def _compare(
    doc: dict[str, Any], command: str, path: str, f: Field, schema: dict[str, Any]
) -> Iterator[tuple[str, str, str]]:
    """Yield each way the API is laxer than the field; fail where they disagree."""
    schema = _resolve(doc, schema)
    t = f.type
    if isinstance(t, Choice):
        found = _api_enum(schema)
        if found is None:
            yield (command, path, "enumeration")
        else:
            assert set(found) == set(t.values), (command, path)
    elif isinstance(t, DateTime):
        if schema.get("format") != "date-time":
            yield (command, path, "date-time format")
    elif isinstance(t, Slug):
        if "pattern" not in schema:
            yield (command, path, "slug pattern")
    elif isinstance(t, Sha256):
        assert schema.get("pattern") == "^[0-9a-f]{64}$", (command, path)
    elif isinstance(t, Text | Ref) and "maxLength" in schema:
        assert t.max_length == schema["maxLength"], (command, path)
    elif isinstance(t, Integer):
        assert schema.get("type") == "integer", (command, path)
    elif isinstance(t, Boolean):
        assert schema.get("type") == "boolean", (command, path)
    elif isinstance(t, ListOf):
        assert schema.get("type") == "array", (command, path)
        if t.min_items > schema.get("minItems", 0):
            yield (command, path, f"at least {t.min_items} item")
        inner = Field(f.name, t.item, f.description)
        yield from _compare(doc, command, path, inner, schema["items"])
    elif isinstance(t, Object):
        if "properties" not in schema:
            yield (command, path, "typed items")
        else:
            yield from _compare_object(doc, command, path, t.fields, schema)


def _compare_object(
    doc: dict[str, Any],
    command: str,
    prefix: str,
    fields: tuple[Field, ...],
    schema: dict[str, Any],
) -> Iterator[tuple[str, str, str]]:
    properties = schema["properties"]
    assert {f.name for f in fields} == set(properties), (command, prefix)
    assert schema.get("additionalProperties") is False, (command, prefix)
    required = set(schema.get("required", []))
    for f in fields:
        path = f"{prefix}.{f.name}" if prefix else f.name
        assert f.required == (f.name in required), (command, path)
        yield from _compare(doc, command, path, f, properties[f.name])


def test_every_write_route_is_a_declared_command(openapi: dict[str, Any]) -> None:
    routes = {
        (method.upper(), path)
        for path, item in openapi["paths"].items()
        for method in item
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE")
    }
    assert routes - NOT_COMMANDS == {(c.method, c.path) for c in COMMANDS.values()}


def test_every_request_body_is_the_declaration(openapi: dict[str, Any]) -> None:
    """Same fields, same required-ness, same enumerations and limits where the API states
    them; where it does not, the drift is exactly API_LAXER."""
    laxer: set[tuple[str, str, str]] = set()
    for c in COMMANDS.values():
        operation = openapi["paths"][c.path][c.method.lower()]
        assert [p["name"] for p in operation.get("parameters", [])] == list(c.path_params)
        assert list(c.path_params) == [f.name for f in c.fields if f.http == "path"]
        assert str(c.http_status) in operation["responses"], c.name
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        schema = _resolve(openapi, body)
        laxer.update(_compare_object(openapi, c.name, "", c.body_fields(), schema))
        has_if_match = any(f.http == "if-match" for f in c.fields)
        assert has_if_match == (not c.creates), c.name
    assert laxer == API_LAXER, (
        f"newly laxer: {sorted(laxer - API_LAXER)}; no longer: {sorted(API_LAXER - laxer)}"
    )


# A value the API's schema lets through today, for each kind of drift in API_LAXER.
LAX_SAMPLES: dict[str, Any] = {
    "enumeration": "anything-at-all",
    "date-time format": "next tuesday",
    "slug pattern": "Not a slug/really",
    "typed items": [{"kind": "vote", "text": "Carried", "owner": "Quill Marrowby"}],
    "at least 1 item": [],
}


def _field_schema(doc: dict[str, Any], c: Any, name: str) -> dict[str, Any]:
    operation = doc["paths"][c.path][c.method.lower()]
    body = _resolve(doc, operation["requestBody"]["content"]["application/json"]["schema"])
    return _resolve(doc, body["properties"][name])


def test_where_the_api_is_laxer_the_declaration_refuses(openapi: dict[str, Any]) -> None:
    """Each drift, shown: the API's schema admits the sample, the declaration refuses it
    naming the field (``POST /meetings`` with ``"starts_at": "next tuesday"``, say)."""
    for name, field_name, what in sorted(API_LAXER):
        c = COMMANDS[name]
        sample = LAX_SAMPLES[what]
        schema = _field_schema(openapi, c, field_name)
        if isinstance(sample, str):
            assert schema["type"] == "string", (name, field_name)
            assert not {"enum", "pattern", "format"} & set(schema), (name, field_name)
            assert len(sample) <= schema.get("maxLength", len(sample)), (name, field_name)
        else:
            assert schema["type"] == "array", (name, field_name)
            assert schema.get("minItems", 0) <= len(sample), (name, field_name)
        with pytest.raises(FieldError) as caught:
            c.field(field_name).check(field_name, sample)
        assert caught.value.field.startswith(field_name), (name, field_name)


def test_the_roles_are_the_authorisation_matrix() -> None:
    from tests.api.test_writes import WRITES

    for c in COMMANDS.values():
        roles, _ = WRITES[(c.method, c.path)]
        assert c.roles == roles, c.name


# The validator -----------------------------------------------------------------------------

# Values every text field takes: no controls, no non-characters, no bidirectional
# formatting (refused in one-line fields; long texts may hold only balanced isolates).
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_SAFE = st.characters(
    blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff" + _BIDI
)


def _text(t: Text) -> st.SearchStrategy[str]:
    pieces = st.one_of(_SAFE, st.sampled_from(["\n", "\t", "\r\n"])) if t.multiline else _SAFE
    size = min(t.max_length, 24)
    found = st.lists(pieces, max_size=size).map("".join).filter(lambda s: len(s) <= t.max_length)
    return found if t.blank else found.filter(lambda s: bool(s.strip()))


_OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


def _datetime(t: DateTime) -> st.SearchStrategy[str]:
    moments = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30))
    spec = st.sampled_from(["seconds", "milliseconds", "microseconds"])
    if t.utc:
        return st.tuples(moments, spec).map(
            lambda p: p[0].replace(tzinfo=UTC).isoformat(timespec=p[1]).replace("+00:00", "Z")
        )
    return st.tuples(moments, _OFFSETS, spec).map(
        lambda p: p[0].replace(tzinfo=p[1]).isoformat(timespec=p[2])
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _text(Text(multiline=True, blank=True)),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_text(Text(max_length=20)), inner, max_size=3)
    ),
    max_leaves=8,
)


def values(t: FieldType) -> st.SearchStrategy[Any]:
    """Every value the type describes (bounded in size)."""
    if isinstance(t, Text):
        return _text(t)
    if isinstance(t, Slug):
        return st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,3}", fullmatch=True)
    if isinstance(t, Ref):
        return _text(Text(max_length=t.max_length))
    if isinstance(t, Uuid):
        return st.uuids().map(str)
    if isinstance(t, Choice):
        return st.sampled_from(t.values)
    if isinstance(t, DateTime):
        return _datetime(t)
    if isinstance(t, Date):
        return st.dates().map(lambda d: d.isoformat())
    if isinstance(t, Integer):
        return st.integers(t.minimum, t.maximum)
    if isinstance(t, Boolean):
        return st.booleans()
    if isinstance(t, Sha256):
        return st.binary().map(lambda b: hashlib.sha256(b).hexdigest())
    if isinstance(t, PersonId):
        opaque = st.from_regex(r"[A-Za-z0-9_-]{15,63}", fullmatch=True).map(lambda s: s + "7")
        return st.uuids().map(str) | opaque
    if isinstance(t, Bytes):
        return st.binary(min_size=1, max_size=16)
    if isinstance(t, JsonObject):
        return st.dictionaries(_text(Text(max_length=20)), _JSON, max_size=4)
    if isinstance(t, ListOf):
        return st.lists(
            values(t.item),
            min_size=t.min_items,
            max_size=min(t.max_items, t.min_items + 2),
            unique=t.unique,
        )
    if isinstance(t, Object):
        return objects(t.fields, defaults=False)
    raise AssertionError(f"no strategy for {t!r}")


def _field_value(f: Field) -> st.SearchStrategy[Any]:
    found = values(f.type)
    return found | st.none() if f.nullable else found


def objects(fields: tuple[Field, ...], *, defaults: bool) -> st.SearchStrategy[dict[str, Any]]:
    required = {f.name: _field_value(f) for f in fields if f.required}
    optional = {f.name: _field_value(f) for f in fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


# Values each type refuses, with a word of the rule the refusal must give.
def refused(t: FieldType) -> st.SearchStrategy[tuple[Any, str]]:
    wrong_kind = st.sampled_from([[], {}, 3.5, True]).map(lambda v: (v, "must be"))
    if isinstance(t, Text):
        control = _text(Text(max_length=10, blank=True)).flatmap(
            lambda s: st.sampled_from(["\x00", "\x1b", "\x7f", "\x85", "\ud800"]).map(
                lambda c: (s + c, "control characters")
            )
        )
        cases = [wrong_kind, control]
        if not t.multiline:
            cases.append(st.just(("two\nlines", "one line")))
        if not t.blank:
            cases.append(st.sampled_from(["", "   "]).map(lambda v: (v, "empty")))
        cases.append(st.just(("x" * (t.max_length + 1), "at most")))
        return st.one_of(cases)
    if isinstance(t, Slug):
        return wrong_kind | st.sampled_from(["Data", "a_b", "a--b", "-a", "a/b", "x" * 65]).map(
            lambda v: (v, "slug")
        )
    if isinstance(t, Ref):
        return wrong_kind | st.sampled_from(
            ["", "  ", "a\nb", "\x85", "x" * (t.max_length + 1)]
        ).map(lambda v: (v, ""))
    if isinstance(t, Uuid):
        return wrong_kind | st.sampled_from(["x", "1234"]).map(lambda v: (v, "UUID"))
    if isinstance(t, Choice):
        return wrong_kind | _text(Text(max_length=20)).filter(lambda v: v not in t.values).map(
            lambda v: (v, "one of")
        )
    if isinstance(t, DateTime):
        bad = [
            "next tuesday",
            "2026-03-01T09:30:00",  # no offset
            "2026-03-01 09:30:00Z",
            "2026-02-30T09:30:00Z",
            "2026-03-01T25:00:00Z",
            "2026-03-01",
            "2026-03-01T09:30:00+24:00",
        ]
        if t.utc:
            bad.append("2026-03-01T09:30:00+01:00")
        return wrong_kind | st.sampled_from(bad).map(lambda v: (v, "RFC 3339"))
    if isinstance(t, Date):
        return wrong_kind | st.sampled_from(
            ["2026-02-30", "2026-13-01", "tomorrow", "2026-03-01T00:00:00Z", "26-03-01"]
        ).map(lambda v: (v, "date"))
    if isinstance(t, Integer):
        out = st.one_of(
            st.integers(max_value=t.minimum - 1), st.integers(min_value=t.maximum + 1)
        ).map(lambda v: (v, "from"))
        return out | st.sampled_from(["1", 1.0, True, []]).map(lambda v: (v, "whole number"))
    if isinstance(t, Boolean):
        return st.sampled_from(["true", 1, 0, []]).map(lambda v: (v, "true or false"))
    if isinstance(t, Sha256):
        return wrong_kind | st.sampled_from(["ab", "A" * 64, "g" * 64]).map(
            lambda v: (v, "SHA-256")
        )
    if isinstance(t, PersonId):
        return wrong_kind | st.sampled_from(
            ["someone@example.org", "short1", "no digits here at all", "x" * 70]
        ).map(lambda v: (v, "opaque id"))
    if isinstance(t, Bytes):
        return st.sampled_from(["text", b"", []]).map(lambda v: (v, "bytes"))
    if isinstance(t, JsonObject):
        return st.sampled_from([([], "object"), ("x", "object"), (7, "object")])
    if isinstance(t, ListOf):
        return st.sampled_from([("x", "list"), ({}, "list")])
    if isinstance(t, Object):
        return st.sampled_from([("x", "object"), ([], "object")])
    raise AssertionError(f"no refusal for {t!r}")


@st.composite
def mutated(
    draw: st.DrawFn, fields: tuple[Field, ...], good: dict[str, Any], prefix: str = ""
) -> tuple[dict[str, Any], str, str]:
    """``good`` with one field made bad (perhaps deep inside a list of objects); returns
    the bad arguments, the path that must be named and a word of the rule."""
    args = dict(good)
    choice = draw(st.sampled_from(["unknown", "missing", "field"]))
    required = [f for f in fields if f.required]
    if choice == "unknown":
        args["zz_unknown"] = 1
        return args, f"{prefix}zz_unknown", "not a field"
    if choice == "missing" and required:
        f = draw(st.sampled_from(required))
        del args[f.name]
        return args, f"{prefix}{f.name}", "required"
    f = draw(st.sampled_from(fields))
    t = f.type
    here = f"{prefix}{f.name}"
    current = args.get(f.name)
    if isinstance(t, ListOf) and isinstance(t.item, Object) and current and draw(st.booleans()):
        i = draw(st.integers(0, len(current) - 1))
        item, path, rule = draw(mutated(t.item.fields, current[i], f"{here}[{i}]."))
        args[f.name] = [*current[:i], item, *current[i + 1 :]]
        return args, path, rule
    if isinstance(t, Object) and isinstance(current, dict) and draw(st.booleans()):
        inner, path, rule = draw(mutated(t.fields, current, f"{here}."))
        args[f.name] = inner
        return args, path, rule
    if isinstance(t, ListOf) and not isinstance(t.item, Object) and current and draw(st.booleans()):
        i = draw(st.integers(0, len(current) - 1))
        bad, rule = draw(refused(t.item))
        args[f.name] = [*current[:i], bad, *current[i + 1 :]]
        return args, f"{here}[{i}]", rule
    bad, rule = draw(refused(t))
    if bad is None:
        bad = 3.5
    args[f.name] = bad
    return args, here, rule


_NAMES = st.sampled_from(sorted(COMMANDS))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=_NAMES)
def test_validate_accepts_every_value_its_types_describe(data: st.DataObject, name: str) -> None:
    c = COMMANDS[name]
    args = data.draw(objects(c.fields, defaults=True))
    checked = validate(name, args)
    assert {k: v for k, v in checked.items() if k in args} == args
    assert set(checked) == {f.name for f in c.fields}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=_NAMES)
def test_validate_refuses_a_mutated_value_naming_the_field(data: st.DataObject, name: str) -> None:
    c = COMMANDS[name]
    good = data.draw(objects(c.fields, defaults=True))
    bad, path, rule = data.draw(mutated(c.fields, good))
    with pytest.raises(FieldError) as caught:
        validate(name, bad)
    assert caught.value.field == path
    assert str(caught.value).startswith(f"{path}: ")
    assert rule in caught.value.rule
    assert isinstance(caught.value, InvalidInputError)


_EVERY_TYPE: tuple[FieldType, ...] = (
    Text(),
    Text(max_length=30, multiline=True, blank=True),
    Slug(),
    Ref("proposal"),
    Uuid(),
    Choice(("a", "b")),
    DateTime(),
    DateTime(utc=True),
    Date(),
    Integer(1, 9),
    Boolean(),
    Sha256(),
    PersonId(),
    Bytes(),
    JsonObject(),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), t=st.sampled_from(_EVERY_TYPE))
def test_each_type_accepts_its_values_and_refuses_others(data: st.DataObject, t: FieldType) -> None:
    value = data.draw(values(t))
    assert t.check("when", value) == value
    bad, rule = data.draw(refused(t))
    with pytest.raises(FieldError) as caught:
        t.check("when", bad)
    assert caught.value.field == "when"
    assert rule in caught.value.rule


def _meeting(**changes: Any) -> dict[str, Any]:
    args = {"process_id": "p1", "title": "Data sharing", "starts_at": "2026-03-01T09:30:00Z"}
    return {**args, "convenor_org": "o1", **changes}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            _meeting(starts_at="next tuesday"),
            "starts_at: must be an RFC 3339 date-time with its UTC offset, such as "
            "2026-03-01T09:30:00+01:00 (got 'next tuesday')",
        ),
        (
            _meeting(starts_at="2026-03-01T09:30:00"),
            "starts_at: must be an RFC 3339 date-time with its UTC offset, such as "
            "2026-03-01T09:30:00+01:00 (got '2026-03-01T09:30:00')",
        ),
        (
            _meeting(disclosure="secret"),
            "disclosure: must be one of on_record, non_attributed, chatham_house, private "
            "(got 'secret')",
        ),
        (_meeting(strand_id=["a", "b"]), "strand_id: must be text (got a list)"),
        (
            _meeting(title="Line\x1b[2J"),
            "title: contains a control character (U+001B) at position 4: control characters "
            "are not allowed in recorded text (it must be one line)",
        ),
        (
            _meeting(venue="Room 4"),
            "venue: is not a field of schedule_meeting (its fields: process_id, strand_id, "
            "title, starts_at, disclosure, convenor_org, id)",
        ),
        (_meeting(title=None), "title: must not be null"),
    ],
)
def test_bad_meetings_are_refused_in_one_sentence(args: dict[str, Any], message: str) -> None:
    with pytest.raises(FieldError) as caught:
        validate("schedule_meeting", args)
    assert str(caught.value) == message


def test_a_nested_field_is_named_by_its_path() -> None:
    items = [{"kind": "action", "text": "Write it up"}, {"kind": "vote", "text": "Voted"}]
    with pytest.raises(FieldError) as caught:
        validate("record_meeting_outcome", {"meeting_id": "m1", "items": items})
    assert caught.value.field == "items[1].kind"
    assert "must be one of decision, action, agreement, disagreement, option" in str(caught.value)
    items[1] = {"kind": "action", "text": "Owner named", "owner": "Bea Quillfeather"}
    with pytest.raises(FieldError, match=r"^items\[1\]\.owner: is not a field of an outcome item"):
        validate("record_meeting_outcome", {"meeting_id": "m1", "items": items})


def test_a_correction_is_any_json_object_without_control_characters() -> None:
    args = {"corrects_index": 4, "reason": "Typo", "correction": {"title": "Data\nsharing"}}
    assert validate("record_correction", args)["correction"] == {"title": "Data\nsharing"}
    args["correction"] = {"sections": [{"text": "ok"}, {"text": "bell\x07"}]}
    with pytest.raises(FieldError) as caught:
        validate("record_correction", args)
    assert caught.value.field == "correction.sections[1].text"
    args["correction"] = {"when": {1, 2}}
    with pytest.raises(FieldError, match=r"^correction\.when: must hold only JSON values"):
        validate("record_correction", args)
    deep: dict[str, Any] = {}
    for _ in range(40):
        deep = {"a": deep}
    args["correction"] = deep
    with pytest.raises(FieldError, match="nests deeper than 32 levels"):
        validate("record_correction", args)


def test_an_unknown_command_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown command 'table_proposals'"):
        validate("table_proposals", {})


def test_validate_fills_defaults_and_keeps_values_as_given() -> None:
    checked = validate(
        "decide_amendment",
        {"proposal_id": "p1", "amendment_id": "A1", "decision": "agreed", "consensus": "banked"},
    )
    assert checked == {
        "proposal_id": "p1",
        "amendment_id": "A1",
        "decision": "agreed",
        "consensus": "banked",
        "dissenting_orgs": [],
        "meeting_id": None,
        "note": "",
        "expected_version": None,
    }


# The command reference -----------------------------------------------------------------------


def test_the_command_reference_is_generated_from_the_registry() -> None:
    """docs/COMMANDS.md is `ledger commands --markdown`; regenerate it after a change."""
    written = (ROOT / "docs" / "COMMANDS.md").read_text(encoding="utf-8")
    assert written == as_markdown(), "run: ledger commands --markdown > docs/COMMANDS.md"
    for name in COMMANDS:
        assert f"\n## {name}\n" in written
