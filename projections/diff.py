"""Section-aware, word-level diffs between two versions of a proposal.

A version is a sequence of sections, each a mapping ``{"id", "heading", "text"}``. Sections
are matched by their stable ``id``, never by position, and the heading and text of each
matched pair are compared word by word.

Words and whitespace are separate tokens (``\\s+`` or ``\\S+``), so punctuation stays attached
to its word and every character of both texts, whitespace included, survives exactly:
``apply_word_ops(ops, "old")`` and ``apply_word_ops(ops, "new")`` give the two texts back.

Matching works on the words only (whitespace between matched words is compared afterwards),
which keeps the work small: common prefix and suffix are trimmed, words that occur exactly
once on each side anchor the alignment (patience diff), and the short stretches left between
anchors go to :class:`difflib.SequenceMatcher`. Long repetitive stretches that would make
SequenceMatcher slow go to a step-bounded Myers diff instead; only if that too runs out of
steps (a large, repetitive region rewritten throughout) is the stretch shown as one deletion
and one insertion, so the time stays bounded (well under a second for 20,000 words).

A section counts as *moved* when its position relative to the other shared sections changed:
the largest set of shared sections whose relative order is the same in both versions stays
put and the others have moved. Adding or removing a section therefore moves nothing.
Positions are 0-based indexes into the old and new sequences.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Literal, TypeAlias

__all__ = [
    "ChangeKind",
    "OpKind",
    "Section",
    "SectionDiff",
    "WordOp",
    "apply_word_ops",
    "diff_as_html",
    "diff_as_json",
    "diff_versions",
    "diff_words",
]

Section: TypeAlias = Mapping[str, str]
"""One section of a proposal version: ``{"id": ..., "heading": ..., "text": ...}``."""

OpKind: TypeAlias = Literal["equal", "insert", "delete"]
ChangeKind: TypeAlias = Literal["unchanged", "modified", "added", "removed", "moved"]

_TOKEN = re.compile(r"(?P<space>\s+)|(?P<word>\S+)")

# Upper bound on the inner-loop work handed to one SequenceMatcher call (the sum, over words
# shared by both stretches, of occurrences in one times occurrences in the other). Past it the
# stretch goes to a Myers diff, which is quick when the stretches differ in few words.
_MATCHER_BUDGET = 500_000
# Upper bound on the steps of one Myers diff; past it the stretch is shown as a replacement.
_MYERS_BUDGET = 2_000_000


@dataclass(frozen=True)
class WordOp:
    """One run of words (with the whitespace between them, exactly as in the source)."""

    op: OpKind
    text: str


@dataclass(frozen=True)
class SectionDiff:
    """How one section (by id) changed between the old and the new version.

    ``change`` is "modified" whenever heading or text differ, also for a moved section (then
    ``moved`` is True); "moved" alone means same content at a new relative position.
    """

    section_id: str
    change: ChangeKind
    moved: bool
    old_position: int | None
    new_position: int | None
    heading: list[WordOp]
    text: list[WordOp]


# --- word level -----------------------------------------------------------------------------


class _OpBuilder:
    """Collects ops, dropping empty runs and merging adjacent runs of the same kind."""

    def __init__(self) -> None:
        self.kinds: list[OpKind] = []
        self.parts: list[list[str]] = []

    def add(self, kind: OpKind, text: str) -> None:
        if not text:
            return
        if self.kinds and self.kinds[-1] == kind:
            self.parts[-1].append(text)
        else:
            self.kinds.append(kind)
            self.parts.append([text])

    def ops(self) -> list[WordOp]:
        pairs = zip(self.kinds, self.parts, strict=True)
        return [WordOp(kind, "".join(part)) for kind, part in pairs]


def _tokenise(text: str) -> tuple[list[str], list[int]]:
    """All tokens of ``text`` in order, and the indexes of the word (non-space) tokens."""
    tokens: list[str] = []
    words: list[int] = []
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "word":
            words.append(len(tokens))
        tokens.append(match.group())
    return tokens, words


def _increasing_run(pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest subsequence of ``pairs`` (sorted by first item) whose second items increase."""
    tails: list[int] = []
    tail_at: list[int] = []
    previous: list[int] = []
    for index, (_, second) in enumerate(pairs):
        slot = bisect_left(tails, second)
        if slot == len(tails):
            tails.append(second)
            tail_at.append(index)
        else:
            tails[slot] = second
            tail_at[slot] = index
        previous.append(tail_at[slot - 1] if slot else -1)
    run: list[tuple[int, int]] = []
    index = tail_at[-1] if tail_at else -1
    while index >= 0:
        run.append(pairs[index])
        index = previous[index]
    run.reverse()
    return run


def _myers(a: Sequence[str], b: Sequence[str], budget: int) -> list[tuple[int, int, int]] | None:
    """Matching blocks of a shortest edit script (Myers), or None past ``budget`` steps."""
    n, m = len(a), len(b)
    offset = n + m + 1
    furthest = [0] * (2 * offset + 1)  # furthest x reached on diagonal k = x - y, at k + offset
    trace: list[list[int]] = []  # after round r: diagonals -r-1 .. r+1, at index k + r + 1
    steps = 0
    for d in range(n + m + 1):
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and furthest[offset + k - 1] < furthest[offset + k + 1]):
                x = furthest[offset + k + 1]
            else:
                x = furthest[offset + k - 1] + 1
            y = x - k
            start = x
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            furthest[offset + k] = x
            steps += 1 + x - start
            if x >= n and y >= m:
                return _myers_blocks(trace, d, n, m)
        if steps > budget:
            return None
        trace.append(furthest[offset - d - 1 : offset + d + 2])
    return None  # pragma: no cover - the loop always reaches (n, m) by d = n + m


def _myers_blocks(trace: list[list[int]], d: int, n: int, m: int) -> list[tuple[int, int, int]]:
    """Walk a Myers trace back from (n, m) and collect the diagonal runs (matches)."""
    blocks: list[tuple[int, int, int]] = []
    x, y = n, m
    for r in range(d, 0, -1):
        previous = trace[r - 1]  # diagonal k at index k + r
        k = x - y
        if k == -r or (k != r and previous[k - 1 + r] < previous[k + 1 + r]):
            prev_k = k + 1
            mid_x = previous[prev_k + r]
        else:
            prev_k = k - 1
            mid_x = previous[prev_k + r] + 1
        if x > mid_x:
            blocks.append((mid_x, mid_x - k, x - mid_x))
        x = previous[prev_k + r]
        y = x - prev_k
    if x:
        blocks.append((0, 0, x))
    blocks.reverse()
    return blocks


def _match_words(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int, int]]:
    """Matching blocks ``(i, j, size)`` of two word lists, sorted, non-overlapping."""
    blocks: list[tuple[int, int, int]] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        size = 0
        while alo + size < ahi and blo + size < bhi and a[alo + size] == b[blo + size]:
            size += 1
        if size:
            blocks.append((alo, blo, size))
            alo += size
            blo += size
        size = 0
        while alo < ahi - size and blo < bhi - size and a[ahi - 1 - size] == b[bhi - 1 - size]:
            size += 1
        if size:
            blocks.append((ahi - size, bhi - size, size))
            ahi -= size
            bhi -= size
        if alo == ahi or blo == bhi:
            continue

        count_a = Counter(a[alo:ahi])
        count_b = Counter(b[blo:bhi])
        unique_b = {
            word: j
            for j, word in enumerate(b[blo:bhi], blo)
            if count_b[word] == 1 and count_a.get(word) == 1
        }
        pairs = [(i, unique_b[word]) for i, word in enumerate(a[alo:ahi], alo) if word in unique_b]
        if pairs:
            for i, j in _increasing_run(pairs):
                stack.append((alo, i, blo, j))
                blocks.append((i, j, 1))
                alo, blo = i + 1, j + 1
            stack.append((alo, ahi, blo, bhi))
            continue

        work = sum(count * count_b[word] for word, count in count_a.items() if word in count_b)
        if work == 0:
            continue
        if work > _MATCHER_BUDGET:
            found = _myers(a[alo:ahi], b[blo:bhi], _MYERS_BUDGET)
            blocks.extend((alo + i, blo + j, size) for i, j, size in found or ())
            continue
        matcher = SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
        blocks.extend(
            (alo + i, blo + j, size) for i, j, size in matcher.get_matching_blocks() if size
        )
    blocks.sort()
    return blocks


def _add_gap(out: _OpBuilder, old: Sequence[str], new: Sequence[str]) -> None:
    """Ops for two token stretches between matched words: shared ends kept, the rest replaced."""
    limit = min(len(old), len(new))
    head = 0
    while head < limit and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    out.add("equal", "".join(old[:head]))
    out.add("delete", "".join(old[head : len(old) - tail]))
    out.add("insert", "".join(new[head : len(new) - tail]))
    out.add("equal", "".join(old[len(old) - tail :]))


def diff_words(old: str, new: str) -> list[WordOp]:
    """Word-level ops turning ``old`` into ``new``; runs are never empty and never repeat a kind."""
    if old == new:
        return [WordOp("equal", old)] if old else []
    a, a_words = _tokenise(old)
    b, b_words = _tokenise(new)
    blocks = _match_words([a[i] for i in a_words], [b[j] for j in b_words])
    out = _OpBuilder()
    at_a = at_b = 0
    for i, j, size in blocks:
        for k in range(size):
            token_a, token_b = a_words[i + k], b_words[j + k]
            _add_gap(out, a[at_a:token_a], b[at_b:token_b])
            out.add("equal", a[token_a])
            at_a, at_b = token_a + 1, token_b + 1
    _add_gap(out, a[at_a:], b[at_b:])
    return out.ops()


def apply_word_ops(ops: Sequence[WordOp], which: Literal["old", "new"]) -> str:
    """Rebuild the old or the new text from word ops."""
    if which == "old":
        keep = "delete"
    elif which == "new":
        keep = "insert"
    else:
        raise ValueError(f"which must be 'old' or 'new', not {which!r}")
    return "".join(op.text for op in ops if op.op in {"equal", keep})


# --- section level --------------------------------------------------------------------------


def _field(section: Section, key: str) -> str:
    value = section[key]
    if not isinstance(value, str):
        raise TypeError(f"section {key!r} must be a string, not {type(value).__name__}")
    return value


def _positions(version: Sequence[Section], name: str) -> dict[str, int]:
    positions: dict[str, int] = {}
    for position, section in enumerate(version):
        section_id = _field(section, "id")
        if section_id in positions:
            raise ValueError(f"duplicate section id {section_id!r} in the {name} version")
        positions[section_id] = position
    return positions


def _whole(kind: OpKind, text: str) -> list[WordOp]:
    return [WordOp(kind, text)] if text else []


def diff_versions(old: Sequence[Section], new: Sequence[Section]) -> list[SectionDiff]:
    """Diff two versions section by section, matching sections by id.

    The result follows the new version's order; each removed section comes right after the
    nearest earlier section of the old version that kept its place (or first, if none), so
    it stands where it was in the old version. Raises ValueError on a duplicate id.
    """
    old_at = _positions(old, "old")
    new_at = _positions(new, "new")
    shared = [(new_at[sid], old_at[sid]) for sid in new_at if sid in old_at]
    stayed = {_field(new[position], "id") for position, _ in _increasing_run(shared)}

    removed_after: dict[str | None, list[SectionDiff]] = {}
    anchor: str | None = None
    for position, section in enumerate(old):
        section_id = _field(section, "id")
        if section_id in stayed:
            anchor = section_id
        elif section_id not in new_at:
            removed = SectionDiff(
                section_id=section_id,
                change="removed",
                moved=False,
                old_position=position,
                new_position=None,
                heading=_whole("delete", _field(section, "heading")),
                text=_whole("delete", _field(section, "text")),
            )
            removed_after.setdefault(anchor, []).append(removed)

    result = list(removed_after.get(None, []))
    for position, section in enumerate(new):
        section_id = _field(section, "id")
        heading, text = _field(section, "heading"), _field(section, "text")
        if section_id not in old_at:
            result.append(
                SectionDiff(
                    section_id=section_id,
                    change="added",
                    moved=False,
                    old_position=None,
                    new_position=position,
                    heading=_whole("insert", heading),
                    text=_whole("insert", text),
                )
            )
            continue
        before = old[old_at[section_id]]
        old_heading, old_text = _field(before, "heading"), _field(before, "text")
        moved = section_id not in stayed
        change: ChangeKind
        if old_heading != heading or old_text != text:
            change = "modified"
        else:
            change = "moved" if moved else "unchanged"
        result.append(
            SectionDiff(
                section_id=section_id,
                change=change,
                moved=moved,
                old_position=old_at[section_id],
                new_position=position,
                heading=diff_words(old_heading, heading),
                text=diff_words(old_text, text),
            )
        )
        result.extend(removed_after.get(section_id, []))
    return result


# --- rendering ------------------------------------------------------------------------------


def _ops_json(ops: Sequence[WordOp]) -> list[dict[str, Any]]:
    return [{"op": op.op, "text": op.text} for op in ops]


def diff_as_json(diffs: Sequence[SectionDiff]) -> list[dict[str, Any]]:
    """Plain JSON-able dicts, keys always in the same order."""
    return [
        {
            "section_id": diff.section_id,
            "change": diff.change,
            "moved": diff.moved,
            "old_position": diff.old_position,
            "new_position": diff.new_position,
            "heading": _ops_json(diff.heading),
            "text": _ops_json(diff.text),
        }
        for diff in diffs
    ]


def _ops_html(ops: Sequence[WordOp]) -> str:
    parts: list[str] = []
    for op in ops:
        escaped = html.escape(op.text)
        if op.op == "insert":
            parts.append(f"<ins>{escaped}</ins>")
        elif op.op == "delete":
            parts.append(f"<del>{escaped}</del>")
        else:
            parts.append(escaped)
    return "".join(parts)


def diff_as_html(diffs: Sequence[SectionDiff]) -> str:
    """Semantic HTML: one ``<section>`` per section, heading in ``<h3>``, text in ``<p>``.

    Insertions are ``<ins>``, deletions ``<del>``; every piece of text is escaped and there
    are no inline styles or scripts (whitespace is kept as is: style with ``white-space``).
    """
    blocks: list[str] = []
    for diff in diffs:
        attributes = [
            f'data-section-id="{html.escape(diff.section_id)}"',
            f'data-change="{diff.change}"',
        ]
        if diff.moved:
            attributes.append('data-moved="true"')
        if diff.old_position is not None:
            attributes.append(f'data-old-position="{diff.old_position}"')
        if diff.new_position is not None:
            attributes.append(f'data-new-position="{diff.new_position}"')
        blocks.append(
            f"<section {' '.join(attributes)}>\n"
            f"<h3>{_ops_html(diff.heading)}</h3>\n"
            f"<p>{_ops_html(diff.text)}</p>\n"
            "</section>"
        )
    return "\n".join(blocks)
