"""Tests for projections.diff: round trips, known answers, rendering and speed."""

from __future__ import annotations

import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import diff as diff_module
from projections.diff import (
    WordOp,
    apply_word_ops,
    diff_as_html,
    diff_as_json,
    diff_versions,
    diff_words,
)

Version = list[dict[str, str]]

# Texts: arbitrary unicode, or few distinct words and whitespace kinds so that diffs align.
texts = st.text(max_size=40) | st.lists(
    st.sampled_from(["a", "b", "cd", "é", "日本", ",", " ", "  ", "\n", "\t", "\u00a0", "\u2028"]),
    max_size=25,
).map("".join)
ids = st.sampled_from(["s1", "s2", "s3", "s4", "s5", "s6"])


def section(section_id: str, heading: str, text: str) -> dict[str, str]:
    """A section mapping as the projections store it."""
    return {"id": section_id, "heading": heading, "text": text}


@st.composite
def versions(draw: st.DrawFn) -> tuple[Version, Version]:
    """An old and a new version whose shared sections are sometimes left as they were."""
    old_ids = draw(st.lists(ids, unique=True, max_size=6))
    old = [section(i, draw(texts), draw(texts)) for i in old_ids]
    by_id = {s["id"]: s for s in old}
    new: Version = []
    for section_id in draw(st.lists(ids, unique=True, max_size=6)):
        if section_id in by_id and draw(st.booleans()):
            new.append(dict(by_id[section_id]))
        else:
            new.append(section(section_id, draw(texts), draw(texts)))
    return old, new


def ops(*pairs: tuple[str, str]) -> list[WordOp]:
    """Word ops from (op, text) pairs, for known answers."""
    return [WordOp(op, text) for op, text in pairs]  # type: ignore[arg-type]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of a longest common subsequence, by plain dynamic programming."""
    row = [0] * (len(b) + 1)
    for x in a:
        previous_diagonal = 0
        for j, y in enumerate(b, 1):
            previous_diagonal, row[j] = (
                row[j],
                previous_diagonal + 1 if x == y else max(row[j], row[j - 1]),
            )
    return row[-1]


# --- properties -----------------------------------------------------------------------------


@given(versions())
def test_ops_rebuild_both_versions_and_every_id_appears_once(pair: tuple[Version, Version]) -> None:
    """Each section diff rebuilds the old and new heading and text, and covers each id once."""
    old, new = pair
    diffs = diff_versions(old, new)
    old_by_id = {s["id"]: (pos, s) for pos, s in enumerate(old)}
    new_by_id = {s["id"]: (pos, s) for pos, s in enumerate(new)}
    assert Counter(d.section_id for d in diffs) == Counter(old_by_id.keys() | new_by_id.keys())
    for d in diffs:
        old_pos, old_section = old_by_id.get(d.section_id, (None, section("", "", "")))
        new_pos, new_section = new_by_id.get(d.section_id, (None, section("", "", "")))
        assert (d.old_position, d.new_position) == (old_pos, new_pos)
        for field, field_ops in (("heading", d.heading), ("text", d.text)):
            assert apply_word_ops(field_ops, "old") == old_section[field]
            assert apply_word_ops(field_ops, "new") == new_section[field]
        if d.change in {"unchanged", "moved"}:
            assert all(op.op == "equal" for op in d.heading + d.text)
        assert d.change != "added" or old_pos is None
        assert d.change != "removed" or new_pos is None
        if d.change in {"added", "removed", "unchanged", "moved"}:
            assert d.moved == (d.change == "moved")
    assert [d.section_id for d in diffs if d.new_position is not None] == [s["id"] for s in new]
    in_place = [d.old_position for d in diffs if d.old_position is not None and not d.moved]
    assert in_place == sorted(in_place)


@given(versions())
def test_a_version_diffed_with_itself_is_all_unchanged(pair: tuple[Version, Version]) -> None:
    """Diffing a version against itself marks every section unchanged with only equal ops."""
    old, _ = pair
    diffs = diff_versions(old, old)
    assert [d.section_id for d in diffs] == [s["id"] for s in old]
    for d in diffs:
        assert (d.change, d.moved) == ("unchanged", False)
        assert all(op.op == "equal" for op in d.heading + d.text)


@given(versions())
def test_sections_that_kept_their_place_stay_in_order(pair: tuple[Version, Version]) -> None:
    """Shared sections not marked moved appear in the same relative order in both versions."""
    old, new = pair
    diffs = diff_versions(old, new)
    stayed = [d for d in diffs if d.old_position is not None and d.new_position is not None]
    kept = [d for d in stayed if not d.moved]
    assert [d.old_position for d in kept] == sorted(d.old_position or 0 for d in kept)
    moved = {d.section_id for d in stayed if d.moved}
    assert len(kept) + len(moved) == len(stayed)


@given(texts, texts)
def test_word_ops_are_non_empty_merged_runs(old: str, new: str) -> None:
    """Word ops rebuild both texts, and no run is empty or follows a run of its own kind."""
    result = diff_words(old, new)
    assert apply_word_ops(result, "old") == old
    assert apply_word_ops(result, "new") == new
    assert all(op.text for op in result)
    assert all(a.op != b.op for a, b in itertools.pairwise(result))


@settings(max_examples=60)
@given(st.lists(st.sampled_from("abc"), max_size=30), st.lists(st.sampled_from("abc"), max_size=30))
def test_myers_fallback_finds_a_longest_common_subsequence(a: list[str], b: list[str]) -> None:
    """The Myers fallback keeps as many words as a longest common subsequence has."""
    blocks = diff_module._myers(a, b, budget=10**9)
    assert blocks is not None
    kept = [(i + k, j + k) for i, j, size in blocks for k in range(size)]
    assert all(a[i] == b[j] for i, j in kept)
    assert kept == sorted(kept)
    assert len({i for i, _ in kept}) == len({j for _, j in kept}) == len(kept)
    assert len(kept) == lcs_length(a, b)


def test_fallbacks_past_their_budgets_still_rebuild_both_texts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With both budgets at zero a changed stretch becomes a plain replacement, still exact."""
    monkeypatch.setattr(diff_module, "_MATCHER_BUDGET", 0)
    monkeypatch.setattr(diff_module, "_MYERS_BUDGET", 0)
    old, new = "x a b a b a y", "x b a b a b y"
    result = diff_words(old, new)
    assert result == ops(
        ("equal", "x "), ("delete", "a b a b a"), ("insert", "b a b a b"), ("equal", " y")
    )


# --- known answers --------------------------------------------------------------------------


def test_a_replaced_word_is_a_deletion_then_an_insertion_in_place() -> None:
    """Replacing one word keeps the words and spaces around it as equal runs."""
    assert diff_words("The cat sat.", "The dog sat.") == ops(
        ("equal", "The "), ("delete", "cat"), ("insert", "dog"), ("equal", " sat.")
    )


def test_inserted_and_deleted_words_and_whitespace_changes() -> None:
    """Insertions, deletions and changed whitespace are each shown exactly."""
    assert diff_words("a c", "a b c") == ops(("equal", "a "), ("insert", "b "), ("equal", "c"))
    assert diff_words("a b c", "a c") == ops(("equal", "a "), ("delete", "b "), ("equal", "c"))
    assert diff_words("a b", "a\n\nb") == ops(
        ("equal", "a"), ("delete", " "), ("insert", "\n\n"), ("equal", "b")
    )
    assert diff_words("", "") == []
    assert diff_words("", "  new ") == ops(("insert", "  new "))
    assert diff_words("old", "") == ops(("delete", "old"))
    assert diff_words("même texte", "même texte") == ops(("equal", "même texte"))


def test_added_and_removed_sections_keep_their_places() -> None:
    """An added section follows the new order; a removed one stays where it was in the old."""
    old = [section("a", "A", "one"), section("x", "X", "gone"), section("b", "B", "two")]
    new = [section("a", "A", "one"), section("y", "Y", "fresh"), section("b", "B", "two")]
    diffs = diff_versions(old, new)
    assert [(d.section_id, d.change) for d in diffs] == [
        ("a", "unchanged"),
        ("x", "removed"),
        ("y", "added"),
        ("b", "unchanged"),
    ]
    removed, added = diffs[1], diffs[2]
    assert (removed.old_position, removed.new_position, removed.moved) == (1, None, False)
    assert removed.heading == ops(("delete", "X"))
    assert removed.text == ops(("delete", "gone"))
    assert (added.old_position, added.new_position) == (None, 1)
    assert added.heading == ops(("insert", "Y"))
    assert added.text == ops(("insert", "fresh"))


def test_a_removed_first_section_comes_first() -> None:
    """A removed section with no earlier section kept in place is listed first."""
    old = [section("x", "", "gone"), section("a", "", "one")]
    new = [section("z", "", "new"), section("a", "", "one")]
    assert [(d.section_id, d.change) for d in diff_versions(old, new)] == [
        ("x", "removed"),
        ("z", "added"),
        ("a", "unchanged"),
    ]


def test_a_moved_section_is_the_only_one_marked_moved() -> None:
    """Moving one section marks it alone, and an edit while moving is 'modified' and moved."""
    old = [section(i, i.upper(), f"text {i}") for i in "abcd"]
    new = [old[1], old[2], old[3], old[0]]
    diffs = diff_versions(old, new)
    assert [(d.section_id, d.change, d.moved) for d in diffs] == [
        ("b", "unchanged", False),
        ("c", "unchanged", False),
        ("d", "unchanged", False),
        ("a", "moved", True),
    ]
    assert (diffs[3].old_position, diffs[3].new_position) == (0, 3)
    edited = [old[1], old[2], old[3], section("a", "A", "text A")]
    last = diff_versions(old, edited)[-1]
    assert (last.change, last.moved) == ("modified", True)
    assert last.text == ops(("equal", "text "), ("delete", "a"), ("insert", "A"))


def test_an_insertion_does_not_move_the_sections_after_it() -> None:
    """Sections shifted by an added section are unchanged, not moved."""
    old = [section("a", "", "1"), section("b", "", "2")]
    new = [section("n", "", "0"), *old]
    assert [(d.change, d.moved) for d in diff_versions(old, new)] == [
        ("added", False),
        ("unchanged", False),
        ("unchanged", False),
    ]


def test_duplicate_ids_and_bad_arguments_are_refused() -> None:
    """A repeated id in a version, a non-string field or an unknown side raise."""
    with pytest.raises(ValueError, match="duplicate section id 'a' in the new version"):
        diff_versions([], [section("a", "", ""), section("a", "", "")])
    with pytest.raises(TypeError, match="'text' must be a string"):
        diff_versions([{"id": "a", "heading": "", "text": None}], [])  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="which must be"):
        apply_word_ops([], "both")  # type: ignore[arg-type]


def test_html_escapes_everything_and_marks_changes() -> None:
    """HTML output escapes markup, wraps changes in ins/del, and has no styles or scripts."""
    old = [section("s<1>", "Fish & chips", "plain text"), section("gone", "Old", "bye")]
    new = [section("s<1>", "Fish & chips", "plain <script>alert(1)</script> & text")]
    out = diff_as_html(diff_versions(old, new))
    assert "<script" not in out
    assert "style=" not in out
    assert "<ins>&lt;script&gt;alert(1)&lt;/script&gt; &amp; </ins>" in out
    assert "<h3>Fish &amp; chips</h3>" in out
    assert '<section data-section-id="s&lt;1&gt;" data-change="modified"' in out
    assert '<section data-section-id="gone" data-change="removed"' in out
    assert "<del>Old</del>" in out
    assert "<del>bye</del>" in out
    assert out.count("<section ") == out.count("</section>") == 2
    assert out.count("<p>") == out.count("</p>") == 2


def test_json_output_is_plain_and_round_trips() -> None:
    """JSON output has a stable key order and survives json.dumps and json.loads."""
    old = [section("a", "Title", "old words"), section("b", "B", "x")]
    new = [section("b", "B", "x"), section("a", "Title", "new words"), section("c", "C", "é")]
    result = diff_as_json(diff_versions(old, new))
    assert json.loads(json.dumps(result)) == result
    assert list(result[0]) == [
        "section_id",
        "change",
        "moved",
        "old_position",
        "new_position",
        "heading",
        "text",
    ]
    assert result[1]["text"] == [
        {"op": "delete", "text": "old"},
        {"op": "insert", "text": "new"},
        {"op": "equal", "text": " words"},
    ]
    assert result[2] == {
        "section_id": "c",
        "change": "added",
        "moved": False,
        "old_position": None,
        "new_position": 2,
        "heading": [{"op": "insert", "text": "C"}],
        "text": [{"op": "insert", "text": "é"}],
    }


# --- speed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("vocabulary", [20, 3000])
def test_twenty_thousand_words_with_a_few_changes_are_quick(vocabulary: int) -> None:
    """A 20,000-word section with a few edits diffs in well under the generous bound."""
    rng = random.Random(vocabulary)
    words = [f"word{rng.randrange(vocabulary)}" for _ in range(20_000)]
    edited = list(words)
    for k in (13, 5_000, 12_345, 19_990):
        edited[k] = "CHANGED"
    del edited[7_000]
    edited.insert(15_000, "INSERTED")
    old_text = " ".join(words)
    new_text = " ".join(edited[:9_000]) + "\n" + " ".join(edited[9_000:])
    started = time.perf_counter()
    diffs = diff_versions([section("s", "h", old_text)], [section("s", "h", new_text)])
    elapsed = time.perf_counter() - started
    assert elapsed < 5
    text_ops = diffs[0].text
    assert apply_word_ops(text_ops, "old") == old_text
    assert apply_word_ops(text_ops, "new") == new_text
    assert sum(op.op == "insert" and "CHANGED" in op.text for op in text_ops) == 4
    assert sum(op.op != "equal" for op in text_ops) < 3_000
