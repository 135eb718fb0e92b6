"""What recorded text may hold: no control characters, no bidirectional overrides; slugs for
ids that appear in URLs.

Every text a command records is checked here (``LedgerAggregate`` calls :func:`check_fields`
on every event's fields before the event exists; the application calls :func:`check_text`
on personal details before it seals them). Refused everywhere: C0 controls (U+0000-U+001F),
DEL (U+007F), C1 controls (U+0080-U+009F), lone surrogates (U+D800-U+DFFF) and U+FFFE,
U+FFFF. Long texts (:data:`LONG_TEXT_FIELDS`) may also hold line breaks and tabs: ``\\n``,
``\\t`` and ``\\r`` only as part of ``\\r\\n`` (what browsers send from a text area). What is
accepted is therefore always valid XML 1.0 character data and cannot forge a line of a log.

Bidirectional formatting controls, which reorder how text is shown (``abc\u202edcba`` shows as
"abcabcd"; a name could read as another's), are refused too: the embeddings and overrides
U+202A-U+202E everywhere; one-line fields (names, titles, ids) also refuse the isolates
U+2066-U+2069 and the marks U+200E, U+200F and U+061C. Long texts may hold marks and
isolates, which right-to-left writing uses (Unicode's bidi algorithm recommends isolates over
embeddings), as long as every isolate (LRI, RLI, FSI) is closed by a PDI on its own line and
no PDI closes nothing: what one text isolates cannot spill into what a page shows after it.

The check runs when a command is decided, never when the log is replayed: entries recorded
before it (or ids that are not slugs) still load, and the pages, feeds and exports encode or
clean what they show.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ledger.errors import InvalidInputError

__all__ = [
    "LONG_TEXT_FIELDS",
    "SLUG_MAX",
    "TextError",
    "check_fields",
    "check_slug",
    "check_text",
    "forbidden_character",
    "is_slug",
]

LONG_TEXT_FIELDS = frozenset(
    {"summary", "text", "note", "reason", "rationale", "override_reason", "findings"}
)
"""Field names (the last key of a field's path) whose values may hold line breaks and tabs."""
_LONG_TEXT_TREES = frozenset({"correction"})
"""Fields whose every nested text is long text (a correction names the fields it corrects)."""


class TextError(InvalidInputError):
    """A text the rules refuse; ``field`` is its path (``title``, ``sections[1].text``),
    which the API gives as the problem's ``field`` member."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


SLUG_MAX = 64
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# One character class each; ``\r`` is allowed in long text only before ``\n`` (checked below).
_NEVER = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
_EMBEDDINGS = "\u202a-\u202e"  # LRE, RLE, PDF, LRO, RLO: refused everywhere
_ISOLATES = "\u2066-\u2069"  # LRI, RLI, FSI, PDI: balanced on a line of long text only
_MARKS = "\u061c\u200e\u200f"  # ALM, LRM, RLM: long text only
_PDI = "\u2069"
_SHORT_BAD = re.compile(f"[{_NEVER}{_EMBEDDINGS}{_ISOLATES}{_MARKS}\t\n\r]")
_LONG_BAD = re.compile(f"[{_NEVER}{_EMBEDDINGS}]|\r(?!\n)")
_LONG_SCAN = re.compile(f"[{_NEVER}{_EMBEDDINGS}{_ISOLATES}]|\r(?!\n)")
_ISOLATE_CHARS = frozenset("\u2066\u2067\u2068\u2069")
_ISOLATE_OR_LINE_END = re.compile(f"[{_ISOLATES}\n\u2029]")


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def _unbalanced_isolate(value: str) -> int | None:
    """The position of the first isolate not closed on its line, or of a PDI closing none."""
    opened: list[int] = []
    for found in _ISOLATE_OR_LINE_END.finditer(value):
        char = found.group(0)
        if char in "\n\u2029":  # a paragraph ends every isolate: it must be closed before
            if opened:
                return opened[0]
        elif char == _PDI:
            if not opened:
                return found.start()
            opened.pop()
        else:
            opened.append(found.start())
    return opened[0] if opened else None


def _first_bad(value: str, long: bool) -> tuple[int, str] | None:
    """(position, character) of the first thing the rule refuses in ``value``, or None."""
    found = (_LONG_SCAN if long else _SHORT_BAD).search(value)
    if found is None:
        return None
    if not long or found.group(0) not in _ISOLATE_CHARS:
        return found.start(), found.group(0)[0]
    # An isolate, which long text may hold if closed on its line; anything else after it?
    bad = _LONG_BAD.search(value, found.start())
    at = _unbalanced_isolate(value)
    places = [p for p in (at, bad.start() if bad else None) if p is not None]
    return (min(places), value[min(places)]) if places else None


def _ok(value: str, long: bool) -> bool:
    """Whether ``value`` is allowed: the rule of ``_SHORT_BAD``/``_LONG_BAD``, decided with
    str and bytes methods where it can (a regular expression takes ~5 ns a character)."""
    if value.isascii():
        controls = value.encode().translate(None, _PRINTABLE_ASCII)
        if not controls:
            return True
        if not long:
            return False
        others = controls.translate(None, b"\n\t")
        if not others:
            return True
        if others.strip(b"\r"):
            return False
        return _LONG_BAD.search(value) is None  # is every CR followed by a LF?
    if value.isprintable():  # no Cc, Cf (bidi controls), Cs or Cn (U+FFFE, U+FFFF) at all
        return True
    return _first_bad(value, long) is None


def forbidden_character(value: str, *, long: bool = False) -> str | None:
    """The first character ``value`` may not hold (``"\\r"`` for a lone CR, the opening
    isolate not closed on its line), or None."""
    found = _first_bad(value, long)
    return found[1] if found else None


def _is_bidi(char: str) -> bool:
    return 0x202A <= ord(char) <= 0x202E or 0x2066 <= ord(char) <= 0x2069 or char in _MARKS


def _describe(char: str) -> str:
    names = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab"}
    code = f"U+{ord(char):04X}"
    if char in names:
        return f"{names[char]} ({code})"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return f"a lone surrogate ({code})"
    if char in "\ufffe\uffff":
        return f"a non-character ({code})"
    if char in _MARKS:
        return f"a bidirectional mark ({code})"
    if _is_bidi(char):
        return f"a bidirectional formatting control ({code})"
    return f"a control character ({code})"


def check_text(name: str, value: str, *, long: bool = False) -> str:
    """``value`` unchanged, or TextError (an InvalidInputError) naming ``name`` and the
    character."""
    if _ok(value, long):
        return value
    found = _first_bad(value, long)
    if found is None:
        return value
    at, char = found
    if not _is_bidi(char):
        allowed = "only line breaks and tabs are allowed" if long else "it must be one line"
        why = f"control characters are not allowed in recorded text ({allowed})"
    elif not long:
        why = "a one-line field holds no bidirectional controls or marks (they reorder text)"
    elif 0x202A <= ord(char) <= 0x202E:
        why = (
            "bidirectional embeddings and overrides are not allowed in recorded text (they "
            "reorder it); use isolates U+2066-U+2069"
        )
    elif char == _PDI:
        why = "this pop directional isolate closes no isolate"
    else:
        why = "every isolate must be closed by U+2069 (PDI) on its own line"
    raise TextError(f"{name} contains {_describe(char)} at position {at}: {why}", field=name)


def _walk(path: str, key: str, value: Any, long: bool) -> None:
    if isinstance(value, str):
        check_text(path, value, long=long or key in LONG_TEXT_FIELDS)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str):
                check_text(f"{path} key", k)
            _walk(f"{path}.{k}" if path else str(k), str(k), v, long)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _walk(f"{path}[{i}]", key, item, long)


_GOOD_KEYS: set[Any] = set()
"""Keys of nested objects already found clean (``text``, ``question_id`` …), bounded."""


def _clean(value: Any, tree: bool, leaf: bool) -> bool:
    """The same rules as :func:`_walk`, without making paths: the bulk import's fast path.
    ``tree``: inside a long-text tree; ``leaf``: the key naming a text is a long-text one."""
    kind = type(value)
    if kind is str:
        return _ok(value, tree or leaf)
    if value is None or kind is int or kind is bool:
        return True
    if kind is dict or isinstance(value, Mapping):
        for k, v in value.items():
            if k not in _GOOD_KEYS:
                if isinstance(k, str) and not _ok(k, False):
                    return False
                if len(_GOOD_KEYS) < 4096:
                    _GOOD_KEYS.add(k)
            if type(v) is str:
                if not _ok(v, tree or k in LONG_TEXT_FIELDS):
                    return False
            elif v is not None and not _clean(v, tree, str(k) in LONG_TEXT_FIELDS):
                return False
    elif kind is list or kind is tuple or isinstance(value, list | tuple):
        for item in value:
            if not _clean(item, tree, leaf):
                return False
    return True


def check_fields(fields: Mapping[str, Any], *, prefix: str = "") -> None:
    """Check every text in ``fields`` (nested lists and objects too), naming the field's path
    (``sections[1].text``) in the error."""
    for key, value in fields.items():
        if type(value) is str:  # most fields
            if not _ok(value, key in LONG_TEXT_FIELDS or key in _LONG_TEXT_TREES):
                break
        elif value is not None and not _clean(
            value, key in _LONG_TEXT_TREES, key in LONG_TEXT_FIELDS
        ):
            break
    else:
        return
    for key, value in fields.items():
        path = f"{prefix}.{key}" if prefix else key
        _walk(path, key, value, key in _LONG_TEXT_TREES)


def is_slug(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= SLUG_MAX and _SLUG.fullmatch(value) is not None


def check_slug(name: str, value: Any) -> str:
    """An id that appears in URLs: lowercase letters and digits in words joined by ``-``."""
    if not is_slug(value):
        raise TextError(
            f"{name} must be a slug: lowercase letters a-z and digits 0-9, in words joined by "
            f"single hyphens, at most {SLUG_MAX} characters (such as 'data-sharing'; got "
            f"{value!r})",
            field=name,
        )
    return str(value)
