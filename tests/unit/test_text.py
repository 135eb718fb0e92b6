"""ledger.text: which characters recorded text may hold, slugs, and the text log's escaping."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from api.observability import TextFormatter, escape_controls
from api.web.feeds import xml_text
from ledger.errors import InvalidInputError
from ledger.text import (
    TextError,
    check_fields,
    check_slug,
    check_text,
    forbidden_character,
    is_slug,
)

NEVER = [chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]]
NEVER += ["\ud800", "\udbff", "\udc00", "\udfff", "\ufffe", "\uffff"]
SHORT_ONLY = ["\n", "\t", "\r", "\r\n"]  # allowed in long text (\r only before \n), never in short
EMBEDDINGS = [chr(c) for c in range(0x202A, 0x202F)]  # LRE RLE PDF LRO RLO: refused everywhere
OPENERS = ["\u2066", "\u2067", "\u2068"]  # LRI RLI FSI
PDI = "\u2069"
MARKS = ["\u200e", "\u200f", "\u061c"]  # LRM RLM ALM
# Text with no control character and no bidi control at all (Arabic and Hebrew letters too).
PLAIN = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Cn", "Zl", "Zp")))


def _xml_ok(text: str) -> bool:
    try:
        ET.fromstring(f"<a>{xml_text(text).replace('&', '&amp;').replace('<', '&lt;')}</a>")
    except ET.ParseError:
        return False
    return True


@given(st.text(), st.sampled_from(NEVER), st.text())
def test_any_text_with_a_control_character_is_refused_naming_the_field(
    before: str, bad: str, after: str
) -> None:
    for long in (False, True):
        with pytest.raises(InvalidInputError, match=r"^title contains .* \(U\+[0-9A-F]{4}\)"):
            check_text("title", before + bad + after, long=long)


@given(st.text(), st.sampled_from(SHORT_ONLY), st.text())
def test_line_breaks_and_tabs_are_refused_in_one_line_fields(
    before: str, bad: str, after: str
) -> None:
    with pytest.raises(InvalidInputError, match=r"^name contains"):
        check_text("name", before + bad + after)


def test_long_text_allows_line_breaks_tabs_and_crlf_but_not_a_lone_cr() -> None:
    assert check_text("text", "one\ntwo\r\n\tthree", long=True) == "one\ntwo\r\n\tthree"
    for lone in ("a\rb", "a\r", "\r\r\n"):
        with pytest.raises(InvalidInputError, match="carriage return"):
            check_text("text", lone, long=True)


@given(st.text())
def test_what_is_accepted_is_xml_and_one_line_of_a_log(value: str) -> None:
    if forbidden_character(value, long=True) is None:
        assert xml_text(value) == value  # nothing to clean: accepted text is XML 1.0 as it is
        assert _xml_ok(value)
    if forbidden_character(value) is None:
        assert "\n" not in value
        assert "\r" not in value
        check_text("title", value)


@given(st.text())
def test_feeds_clean_any_old_text_to_xml(value: str) -> None:
    assert _xml_ok(value)


def test_nested_fields_are_named_by_their_path() -> None:
    sections = [{"id": "s1", "heading": "H", "text": "fine\n"}, {"id": "s2", "text": "\x1b[2J"}]
    with pytest.raises(InvalidInputError, match=r"^sections\[1\]\.text contains a control"):
        check_fields({"title": "T", "sections": sections})
    with pytest.raises(InvalidInputError, match=r"^sections\[0\]\.heading contains a line break"):
        check_fields({"sections": [{"id": "s1", "heading": "two\nlines", "text": ""}]})
    with pytest.raises(InvalidInputError, match=r"^actor\.id contains"):
        check_fields({"id": "j\x00smith"}, prefix="actor")
    check_fields({"correction": {"title": "a\nb"}, "findings": ["one\ntwo"]})  # long text


@given(st.text(max_size=80))
def test_slugs(value: str) -> None:
    import re

    expected = len(value) <= 64 and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", value) is not None
    assert is_slug(value) is expected
    if not expected:
        with pytest.raises(InvalidInputError, match=r"^strand_id must be a slug"):
            check_slug("strand_id", value)


def test_slug_examples() -> None:
    for good in ("research", "data-sharing", "s1", "a" * 64):
        assert check_slug("strand_id", good) == good
    for bad in ("", "Research", "a/b", "a--b", "-a", "a-", "a b", "a_b", "a" * 65, "é"):
        assert not is_slug(bad), bad


@given(st.text())
def test_the_text_log_writes_any_value_on_one_line(value: str) -> None:
    record = logging.makeLogRecord(
        {"name": "ledger.http", "levelno": 20, "levelname": "INFO", "msg": "%s", "args": (value,)}
    )
    line = TextFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert escape_controls(value) in line


_TEXTS = st.text(
    st.sampled_from(
        ["a", " ", "\n", "\t", "\r", "\x1b", "\x85", "\ud800", "é", "\u202e", "\u2067", PDI]
    )
)
_KEYS = st.sampled_from(["title", "text", "note", "id", "a\nb", "findings"])
_VALUES = st.recursive(
    st.none() | st.integers() | st.booleans() | _TEXTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["title", "summary", "sections", "correction"]), _VALUES))
@hsettings(max_examples=500)
def test_the_fast_path_decides_exactly_as_the_full_check(fields: dict[str, object]) -> None:
    from ledger.text import _LONG_TEXT_TREES, LONG_TEXT_FIELDS, _clean

    fast = all(_clean(v, k in _LONG_TEXT_TREES, k in LONG_TEXT_FIELDS) for k, v in fields.items())
    try:
        for key, value in fields.items():  # the full check, path by path, without the fast path
            from ledger.text import _walk

            _walk(key, key, value, key in _LONG_TEXT_TREES)
    except InvalidInputError:
        assert not fast
    else:
        assert fast


@given(
    st.text(
        st.sampled_from(
            [
                *("a", " ", "\n", "\t", "\r", "\x1b", "\x7f", "\x85", "é", "\ufffe", "\xa0"),
                *("\u202a", "\u202e", "\u2066", "\u2068", PDI, "\u200f", "\u061c", "\u2029", "ש"),
            ]
        )
    )
)
def test_the_fast_character_check_agrees_with_the_rule(value: str) -> None:
    from ledger.text import _ok

    for long in (False, True):
        assert _ok(value, long) is (forbidden_character(value, long=long) is None)


@given(PLAIN, st.sampled_from(EMBEDDINGS), st.text())
def test_bidi_embeddings_and_overrides_are_refused_in_every_field(
    before: str, bad: str, after: str
) -> None:
    """An override (U+202E) makes a name read as another's: refused in every field."""
    for long in (False, True):
        with pytest.raises(InvalidInputError, match=r"^name contains a bidirectional") as found:
            check_text("name", before + bad + after, long=long)
        assert isinstance(found.value, TextError)
        assert found.value.field == "name"
        assert forbidden_character(before + bad + after, long=long) is not None


@given(PLAIN, st.sampled_from([*OPENERS, PDI, *MARKS]), PLAIN)
def test_one_line_fields_refuse_isolates_and_marks(before: str, bad: str, after: str) -> None:
    where = rf"\(U\+{ord(bad):04X}\) at position {len(before)}: a one-line field"
    with pytest.raises(InvalidInputError, match=rf"^title contains a bidirectional .* {where}"):
        check_text("title", before + bad + after)
    if bad in MARKS:  # a mark alone is fine in long text
        check_fields({"summary": before + bad + after})


@given(
    st.lists(st.tuples(PLAIN, st.sampled_from(OPENERS), PLAIN, st.sampled_from(MARKS), PLAIN)),
    PLAIN,
)
def test_long_text_holds_marks_and_isolates_closed_on_their_line(
    parts: list[tuple[str, str, str, str, str]], tail: str
) -> None:
    """Right-to-left text in a long field: each isolate closed on its line, marks anywhere."""
    value = "".join(a + opener + b + mark + c + PDI for a, opener, b, mark, c in parts) + tail
    nested = "\n".join(f"{o}{value}{PDI}" for o in OPENERS)
    for text in (value, nested):
        assert check_text("text", text, long=True) == text
        check_fields({"rationale": text, "correction": {"title": text}})


def _balanced_lines(value: str) -> bool:
    """The reference rule: on every line, isolates open and close like brackets."""
    for line in value.replace("\u2029", "\n").split("\n"):
        depth = 0
        for char in line:
            if char in OPENERS:
                depth += 1
            elif char == PDI:
                if depth == 0:
                    return False
                depth -= 1
        if depth:
            return False
    return True


@given(st.text(st.sampled_from(["a", "ש", " ", "\n", "\u2029", "\u200f", *OPENERS, PDI])))
def test_long_text_accepts_isolates_exactly_when_each_line_balances_them(value: str) -> None:
    accepted = forbidden_character(value, long=True) is None
    assert accepted is _balanced_lines(value)
    if accepted:
        assert check_text("reason", value, long=True) == value
    else:
        with pytest.raises(TextError, match=r"^reason contains a bidirectional formatting control"):
            check_text("reason", value, long=True)
