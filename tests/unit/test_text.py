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
from ledger.text import check_fields, check_slug, check_text, forbidden_character, is_slug

NEVER = [chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]]
NEVER += ["\ud800", "\udbff", "\udc00", "\udfff", "\ufffe", "\uffff"]
SHORT_ONLY = ["\n", "\t", "\r", "\r\n"]  # allowed in long text (\r only before \n), never in short


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


_TEXTS = st.text(st.sampled_from(["a", " ", "\n", "\t", "\r", "\x1b", "\x85", "\ud800", "é"]))
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
        st.sampled_from(["a", " ", "\n", "\t", "\r", "\x1b", "\x7f", "\x85", "é", "\ufffe", "\xa0"])
    )
)
def test_the_fast_character_check_agrees_with_the_rule(value: str) -> None:
    from ledger.text import _ok

    for long in (False, True):
        assert _ok(value, long) is (forbidden_character(value, long=long) is None)
