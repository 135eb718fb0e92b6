"""Field types of command declarations, and the one validator every channel shares.

A type knows what it accepts and says what it refused in the same words for the API, the
CLI, the import and the workspace: :class:`FieldError` names the field's path
(``items[1].kind``) and the rule (``must be one of decision, action …``). Standard library
only (plus :mod:`ledger.errors` and :mod:`ledger.text`): no web framework, no database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from ledger.errors import InvalidInputError
from ledger.text import SLUG_MAX, check_text, is_slug

__all__ = [
    "SHORT",
    "TEXT",
    "Boolean",
    "Bytes",
    "Choice",
    "Date",
    "DateTime",
    "Field",
    "FieldError",
    "FieldType",
    "Integer",
    "JsonObject",
    "ListOf",
    "Object",
    "PersonId",
    "Ref",
    "Sha256",
    "Slug",
    "Text",
    "Uuid",
    "check_object",
]

SHORT = 500
"""Most one-line texts (titles, names): at most this many characters."""
TEXT = 20_000
"""Long texts (summaries, notes, reasons, section text): at most this many characters."""


class FieldError(InvalidInputError):
    """A value a command's declaration refuses: ``field`` is its path, ``rule`` the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


class FieldType:
    """What a field holds; ``check`` returns the value or raises :class:`FieldError`."""

    name = "value"

    def check(self, path: str, value: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        """A short human description, as `ledger commands` and docs/COMMANDS.md show it."""
        return self.name

    def as_json(self) -> dict[str, Any]:
        """A JSON description (`ledger commands --json`)."""
        return {"type": self.name}


def _need_text(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise FieldError(path, f"must be text (got {_kind_of(value)})")
    return value


def _controls(path: str, value: str, *, long: bool) -> None:
    try:
        check_text(path, value, long=long)
    except InvalidInputError as exc:
        raise FieldError(path, str(exc)[len(path) + 1 :]) from None


@dataclass(frozen=True, slots=True)
class Text(FieldType):
    """Text: one line unless ``multiline`` (line breaks and tabs, never other controls)."""

    max_length: int = SHORT
    multiline: bool = False
    blank: bool = False  # whether empty (or only spaces) is allowed
    name = "text"

    def check(self, path: str, value: Any) -> str:
        text = _need_text(path, value)
        if len(text) > self.max_length:
            raise FieldError(
                path, f"must be at most {self.max_length} characters (got {len(text)})"
            )
        _controls(path, text, long=self.multiline)  # first: str.strip() drops U+0085
        if not self.blank and not text.strip():
            raise FieldError(path, "must not be empty")
        return text

    def describe(self) -> str:
        lines = "multi-line text" if self.multiline else "one-line text"
        empty = ", may be empty" if self.blank else ""
        return f"{lines} (≤ {self.max_length:,} characters{empty})"

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "max_length": self.max_length,
            "multiline": self.multiline,
            "blank": self.blank,
        }


@dataclass(frozen=True, slots=True)
class Slug(FieldType):
    """An id that appears in URLs: lowercase words of a-z and 0-9 joined by single hyphens."""

    name = "slug"

    def check(self, path: str, value: Any) -> str:
        text = _need_text(path, value)
        if not is_slug(text):
            raise FieldError(
                path,
                "must be a slug: lowercase letters a-z and digits 0-9, in words joined by "
                f"single hyphens, at most {SLUG_MAX} characters, such as 'data-sharing' "
                f"(got {_shown(text)})",
            )
        return text

    def describe(self) -> str:
        return f"slug (a-z, 0-9 and single hyphens, ≤ {SLUG_MAX} characters)"

    def as_json(self) -> dict[str, Any]:
        return {"type": self.name, "max_length": SLUG_MAX, "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"}


@dataclass(frozen=True, slots=True)
class Ref(FieldType):
    """The id of an existing record of ``kind`` (whether it exists is the application's
    check, not the declaration's)."""

    kind: str
    max_length: int = 100
    name = "ref"

    def check(self, path: str, value: Any) -> str:
        text = _need_text(path, value)
        if len(text) > self.max_length:
            raise FieldError(
                path, f"must be at most {self.max_length} characters (got {len(text)})"
            )
        _controls(path, text, long=False)
        if not text.strip():
            raise FieldError(path, f"must be {self.describe()} (got an empty text)")
        return text

    def describe(self) -> str:
        what = self.kind.replace("_", " ")
        return f"id of {'an' if what[0] in 'aeiou' else 'a'} {what}"

    def as_json(self) -> dict[str, Any]:
        return {"type": self.name, "kind": self.kind, "max_length": self.max_length}


@dataclass(frozen=True, slots=True)
class Uuid(FieldType):
    """A UUID (the id a client chooses for a record it creates)."""

    name = "uuid"

    def check(self, path: str, value: Any) -> Any:
        if isinstance(value, UUID):
            return value
        text = _need_text(path, value)
        try:
            UUID(text)
        except ValueError:
            raise FieldError(path, f"must be a UUID (got {_shown(text)})") from None
        return text

    def describe(self) -> str:
        return "UUID"


@dataclass(frozen=True, slots=True)
class Choice(FieldType):
    """One of a fixed list of values."""

    values: tuple[str, ...]
    name = "choice"

    def check(self, path: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise FieldError(path, f"must be one of {', '.join(self.values)} (got {_shown(value)})")
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)

    def as_json(self) -> dict[str, Any]:
        return {"type": self.name, "values": list(self.values)}


_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class DateTime(FieldType):
    """An RFC 3339 date-time with its offset (``utc``: the offset must be ``Z``)."""

    utc: bool = False
    name = "datetime"

    def check(self, path: str, value: Any) -> str:
        text = _need_text(path, value)
        example = "2026-03-01T09:30:00Z" if self.utc else "2026-03-01T09:30:00+01:00"
        what = (
            "an RFC 3339 UTC date-time ending in Z"
            if self.utc
            else ("an RFC 3339 date-time with its UTC offset")
        )
        ok = _DATETIME.fullmatch(text) is not None and (not self.utc or text.endswith("Z"))
        if ok:
            try:
                datetime.fromisoformat(text[:19])  # the calendar: no 31 April, no 25:00
                offset = text[19:].lstrip(".0123456789")
                if offset != "Z" and (int(offset[1:3]) > 23 or int(offset[4:6]) > 59):
                    ok = False
            except ValueError:
                ok = False
        if not ok:
            raise FieldError(path, f"must be {what}, such as {example} (got {_shown(text)})")
        return text

    def describe(self) -> str:
        return "RFC 3339 UTC date-time (…Z)" if self.utc else "RFC 3339 date-time with offset"

    def as_json(self) -> dict[str, Any]:
        return {"type": self.name, "utc": self.utc}


@dataclass(frozen=True, slots=True)
class Date(FieldType):
    """A calendar date, ``YYYY-MM-DD``."""

    name = "date"

    def check(self, path: str, value: Any) -> str:
        text = _need_text(path, value)
        ok = _DATE.fullmatch(text) is not None
        if ok:
            try:
                date.fromisoformat(text)
            except ValueError:
                ok = False
        if not ok:
            raise FieldError(
                path, f"must be a date YYYY-MM-DD, such as 2026-03-01 (got {_shown(text)})"
            )
        return text

    def describe(self) -> str:
        return "date (YYYY-MM-DD)"


@dataclass(frozen=True, slots=True)
class Integer(FieldType):
    """A whole number from ``minimum`` to ``maximum``."""

    minimum: int = 0
    maximum: int = 2**53
    name = "integer"

    def check(self, path: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise FieldError(path, f"must be a whole number (got {_kind_of(value)})")
        if not self.minimum <= value <= self.maximum:
            raise FieldError(path, f"must be from {self.minimum} to {self.maximum} (got {value})")
        return value

    def describe(self) -> str:
        return f"integer {self.minimum}–{self.maximum}"

    def as_json(self) -> dict[str, Any]:
        return {"type": self.name, "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True, slots=True)
class Boolean(FieldType):
    name = "boolean"

    def check(self, path: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise FieldError(path, f"must be true or false (got {_kind_of(value)})")
        return value

    def describe(self) -> str:
        return "true or false"


_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Sha256(FieldType):
    """The SHA-256 of a document, 64 lowercase hex digits."""

    name = "sha256"

    def check(self, path: str, value: Any) -> str:
        text = _need_text(path, value)
        if _SHA256.fullmatch(text) is None:
            raise FieldError(
                path, f"must be a SHA-256: 64 lowercase hex digits (got {_shown(text)})"
            )
        return text

    def describe(self) -> str:
        return "SHA-256 (64 lowercase hex digits)"


_OPAQUE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True, slots=True)
class PersonId(FieldType):
    """A person's id: a UUID or an opaque id (16-64 letters, digits, ``-`` or ``_`` with a
    digit). It stays in the log after erasure, so it must not itself be personal."""

    name = "person_id"

    def check(self, path: str, value: Any) -> str:
        text = _need_text(path, value)
        try:
            UUID(text)
            return text
        except ValueError:
            pass
        if _OPAQUE.fullmatch(text) is None or not any(c.isdigit() for c in text):
            raise FieldError(
                path,
                "must be a UUID or an opaque id (16-64 letters, digits, - or _, with at least "
                "one digit): it stays in the log after erasure, so it must not be personal",
            )
        return text

    def describe(self) -> str:
        return "person id (UUID or 16-64 letters, digits, - or _)"


@dataclass(frozen=True, slots=True)
class Bytes(FieldType):
    """A document's bytes (never JSON: over HTTP the SHA-256 of an uploaded document)."""

    name = "bytes"

    def check(self, path: str, value: Any) -> bytes:
        if not isinstance(value, bytes) or not value:
            raise FieldError(path, f"must be the document's bytes (got {_kind_of(value)})")
        return value

    def describe(self) -> str:
        return "document bytes"


_JSON_DEPTH = 32


@dataclass(frozen=True, slots=True)
class JsonObject(FieldType):
    """Any JSON object (text, numbers, booleans, null, lists, objects; ``depth`` levels at
    most); every text in it may be multi-line, never hold other control characters."""

    depth: int = _JSON_DEPTH
    name = "object"

    def check(self, path: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise FieldError(path, f"must be an object (got {_kind_of(value)})")
        self._walk(path, value, 1)
        return dict(value)

    def _walk(self, path: str, value: Any, depth: int) -> None:
        if depth > self.depth:
            raise FieldError(path, f"nests deeper than {self.depth} levels")
        if isinstance(value, str):
            _controls(path, value, long=True)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise FieldError(path, f"has a key that is not text ({_shown(key)})")
                _controls(f"{path} key", key, long=False)
                self._walk(f"{path}.{key}", item, depth + 1)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                self._walk(f"{path}[{i}]", item, depth + 1)
        elif value is not None and not isinstance(value, bool | int | float):
            raise FieldError(path, f"must hold only JSON values (got {_kind_of(value)})")

    def describe(self) -> str:
        return "JSON object"


@dataclass(frozen=True, slots=True)
class ListOf(FieldType):
    """A list of ``item`` values, ``min_items`` to ``max_items`` of them."""

    item: FieldType
    min_items: int = 0
    max_items: int = 500
    unique: bool = False
    name = "list"

    def check(self, path: str, value: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise FieldError(path, f"must be a list (got {_kind_of(value)})")
        if len(value) < self.min_items:
            least = "item" if self.min_items == 1 else "items"
            raise FieldError(path, f"must have at least {self.min_items} {least}")
        if len(value) > self.max_items:
            raise FieldError(path, f"must have at most {self.max_items} items (got {len(value)})")
        checked = [self.item.check(f"{path}[{i}]", v) for i, v in enumerate(value)]
        if self.unique:
            seen: set[Any] = set()
            for i, v in enumerate(checked):
                if v in seen:
                    raise FieldError(f"{path}[{i}]", f"is listed twice ({_shown(v)})")
                seen.add(v)
        return checked

    def describe(self) -> str:
        bounds = f"{self.min_items}–{self.max_items}"
        return f"list ({bounds}) of {self.item.describe()}"

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "items": self.item.as_json(),
            "min_items": self.min_items,
            "max_items": self.max_items,
            "unique": self.unique,
        }


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a command (or of a nested object)."""

    name: str
    type: FieldType
    description: str
    required: bool = True
    default: Any = None  # the value used when an optional field is left out
    nullable: bool = False  # whether null is accepted (meaning: left out)
    correctable: bool = False  # whether a later correction may change it
    http: str = "body"  # over HTTP: body, path, if-match (a header) or upload (see Command)

    def check(self, path: str, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise FieldError(path, "must not be null")
        return self.type.check(path, value)


@dataclass(frozen=True, slots=True)
class Object(FieldType):
    """A nested object with its own fields (unknown keys refused)."""

    fields: tuple[Field, ...]
    title: str = "object"
    name = "object"

    def check(self, path: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise FieldError(path, f"must be an object (got {_kind_of(value)})")
        article = "an" if self.title[0] in "aeiou" else "a"
        return check_object(
            path, self.fields, value, defaults=False, title=f"{article} {self.title}"
        )

    def describe(self) -> str:
        return f"{self.title} {{{', '.join(f.name for f in self.fields)}}}"

    def as_json(self) -> dict[str, Any]:
        return {"type": self.name, "fields": [_field_json(f) for f in self.fields]}


def _field_json(f: Field) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": f.name,
        "required": f.required,
        "description": f.description,
        **f.type.as_json(),
    }
    if not f.required:
        found["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
    if f.nullable:
        found["nullable"] = True
    if f.correctable:
        found["correctable"] = True
    return found


def check_object(
    path: str,
    fields: Sequence[Field],
    value: Mapping[str, Any],
    *,
    defaults: bool,
    title: str = "object",
) -> dict[str, Any]:
    """``value`` checked field by field: unknown keys and missing required fields refused;
    with ``defaults``, left-out optional fields are filled with their defaults."""
    names = {f.name for f in fields}
    for key in value:
        if key not in names:
            where = f"{path}.{key}" if path else str(key)
            allowed = ", ".join(f.name for f in fields)
            raise FieldError(where, f"is not a field of {title} (its fields: {allowed})")
    checked: dict[str, Any] = {}
    for f in fields:
        where = f"{path}.{f.name}" if path else f.name
        if f.name not in value:
            if f.required:
                raise FieldError(where, "is required")
            if defaults:
                checked[f.name] = list(f.default) if isinstance(f.default, tuple) else f.default
            continue
        checked[f.name] = f.check(where, value[f.name])
    return checked
