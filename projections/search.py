"""Full-text search over what the process said: proposals, amendments, outcomes, publications.

One document per searchable thing, versioned by log index like every read model
(``valid_from``/``valid_to``), so a search *as of* index k finds the text in force then:

* ``proposal`` (``ref_id`` = proposal id): the title, and every section's heading and text of
  the current text version. A revision closes the document and opens its successor.
* ``amendment`` (``ref_id`` = proposal id, ``sub_id`` = amendment id): the rationale and the
  headings and text of its changes. Decided amendments keep their text.
* ``outcome`` (``ref_id`` = meeting id, ``sub_id`` = outcome id): the text of every item.
* ``publication`` (``ref_id`` = publication id): the title (withdrawn and superseded
  publications stay findable: their record stays in the log).

Amendments and outcomes are titled by what they belong to ("Amendment A2 to …",
"Outcome O1 of …"); those labels are shown in hits but not indexed, so a proposal's or a
meeting's title does not make every amendment or outcome match.

Table ``pv_search_docs`` holds the documents, each with a ``doc_id`` derived from the entry
that made it (``index * 16 + position``), so a rebuild gives the same ids. The index is:

* SQLite: a plain FTS5 table ``pv_search_fts(title, body)`` (Porter stemming, diacritics
  folded) whose rowid is the ``doc_id``. Each runner batch indexes the documents it wrote
  in the same transaction, with one statement (:meth:`SearchView.finish_batch`), and a reset
  drops and recreates the index (:meth:`SearchView.clear`), so the documents table is the
  one source of truth on both stores. Old versions stay indexed; the join on
  ``pv_search_docs`` keeps only those in force at ``at``. Ranked by ``bm25`` with the title
  weighted above the body; snippets by ``snippet()``.
* PostgreSQL: a generated ``tsv tsvector`` column (``english``; title weight A, body B) with
  a GIN index, queried with ``websearch_to_tsquery``, ranked by ``ts_rank_cd``; snippets by
  ``ts_headline``.

Snippets mark matched words with ``«`` and ``»``; those two characters are replaced by
``‹``/``›`` in the indexed text, so a caller can escape a snippet and then turn the marks
into highlighting without ambiguity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.errors import InvalidInputError
from projections.base import Entry, clear_tables, current_field, replace_row
from projections.db import Db

__all__ = ["KINDS", "SearchView", "search"]

KINDS = ("proposal", "amendment", "outcome", "publication")
"""The kinds of document the search indexes."""

DOCS = "pv_search_docs"
FTS = "pv_search_fts"
MEETINGS = "pv_search_meetings"

_PER_ENTRY = 16  # doc_id = entry index * _PER_ENTRY + position within the entry
_MAX_TERMS = 32  # words of a query beyond this are ignored (PostgreSQL overflows on ~10,000)
_MARK_OPEN, _MARK_CLOSE = "«", "»"

_COLUMNS = (
    "kind TEXT NOT NULL, ref_id TEXT NOT NULL, sub_id TEXT NOT NULL, "
    "valid_from BIGINT NOT NULL, valid_to BIGINT, doc_id BIGINT NOT NULL UNIQUE, "
    "title TEXT NOT NULL, body TEXT NOT NULL"
)
_KEY = "PRIMARY KEY (kind, ref_id, sub_id, valid_from)"


def _indexed_title_sql(alias: str = "") -> str:
    """SQL for the title as indexed: only where it is the document's own text, not a label."""
    return f"CASE WHEN {alias}kind IN ('proposal', 'publication') THEN {alias}title ELSE '' END"


_PG_TSV = (
    f"setweight(to_tsvector('english'::regconfig, {_indexed_title_sql()}), 'A') || "
    "setweight(to_tsvector('english'::regconfig, body), 'B')"
)

_FTS_SQLITE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS} USING fts5(title, body, "
    "tokenize = 'porter unicode61 remove_diacritics 2')"
)
_DDL_SQLITE = [
    f"CREATE TABLE IF NOT EXISTS {DOCS} ({_COLUMNS}, {_KEY})",
    _FTS_SQLITE,
    # Older releases kept the index by triggers, one FTS5 insert per document (and FTS5
    # flushes its pending terms at every statement: one tiny segment per document). The
    # view now indexes each batch's documents in one statement (``finish_batch``).
    f"DROP TRIGGER IF EXISTS {DOCS}_indexed",
    f"DROP TRIGGER IF EXISTS {DOCS}_unindexed",
]
_DDL_POSTGRESQL = [
    f"CREATE TABLE IF NOT EXISTS {DOCS} ({_COLUMNS}, "
    f"tsv tsvector GENERATED ALWAYS AS ({_PG_TSV}) STORED, {_KEY})",
    f"CREATE INDEX IF NOT EXISTS {DOCS}_tsv ON {DOCS} USING GIN (tsv)",
]
_DDL_COMMON = [
    f"CREATE TABLE IF NOT EXISTS {MEETINGS} (id TEXT NOT NULL, valid_from BIGINT NOT NULL, "
    "valid_to BIGINT, title TEXT NOT NULL, PRIMARY KEY (id, valid_from))",
]

# ts_headline options: no "?" or "%" (the Db adapts placeholders, psycopg reads "%").
_HEADLINE = (
    f"StartSel={_MARK_OPEN}, StopSel={_MARK_CLOSE}, MaxWords=18, MinWords=6, ShortWord=0, "
    "MaxFragments=1"
)


def _clean(text: str) -> str:
    """Text as indexed: no NUL (PostgreSQL text refuses it), no snippet marks."""
    return text.replace("\x00", " ").replace(_MARK_OPEN, "‹").replace(_MARK_CLOSE, "›")


def _section_text(sections: Any) -> str:
    parts: list[str] = []
    for section in sections or []:
        if isinstance(section, dict):
            heading, text = section.get("heading"), section.get("text")
            if heading:  # a JSON value that is true is never an empty string
                parts.append(str(heading))
            if text:
                parts.append(str(text))
    return "\n".join(parts)


class SearchView:
    """Full-text search documents, versioned by log index."""

    name = "search"
    tables = (DOCS, MEETINGS)  # on SQLite, ``clear`` also empties the full-text index
    topics = (
        "proposal.tabled",
        "proposal.revised",
        "proposal.amendment_proposed",
        "meeting.scheduled",
        "meeting.outcome_recorded",
        "publication.published",
        "publication.embargoed",
    )

    def create(self, db: Db) -> None:
        """Create the documents table, its full-text index and the meeting titles."""
        ddl = _DDL_SQLITE if db.dialect == "sqlite" else _DDL_POSTGRESQL
        for statement in [*ddl, *_DDL_COMMON]:
            db.execute(statement)

    def clear(self, db: Db) -> None:
        """Empty the view (inside the runner's reset transaction). On SQLite the full-text
        index is dropped and made anew: far faster than deleting its rows one by one."""
        clear_tables(db, self.tables)
        if db.dialect == "sqlite":
            db.execute(f"DROP TABLE IF EXISTS {FTS}")
            db.execute(_FTS_SQLITE)

    def finish_batch(self, db: Db, start: int, end: int) -> None:
        """SQLite: index the documents the batch of entries ``start``..``end`` wrote (their
        ``doc_id`` derives from their entry's index), in the batch's own transaction, with one
        statement. PostgreSQL computes its ``tsv`` column itself."""
        if db.dialect != "sqlite":
            return
        # OR REPLACE: where an older release's trigger (recreated by an older process's
        # setup, during an upgrade) has indexed a document already, it is indexed once.
        db.execute(
            f"INSERT OR REPLACE INTO {FTS} (rowid, title, body) "
            f"SELECT doc_id, {_indexed_title_sql()}, body FROM {DOCS} "
            "WHERE doc_id >= ? AND doc_id < ? ORDER BY doc_id",
            [start * _PER_ENTRY, end * _PER_ENTRY],
        )

    def apply(self, db: Db, entry: Entry) -> None:
        """Index the text an entry brings (ignores entries without searchable text)."""
        data, subject = entry.data, entry.subject_id
        if entry.type in ("proposal.tabled", "proposal.revised"):
            title = data.get("title")
            if title is None:
                title = self._current_title(db, "proposal", subject, "") or ""
            self._put(db, entry, 0, "proposal", subject, "", title, _section_text(data["sections"]))
        elif entry.type == "proposal.amendment_proposed":
            amendment_id = str(data["amendment_id"])
            of = self._current_title(db, "proposal", subject, "")
            label = f"Amendment {amendment_id}" + (f" to {of}" if of else "")
            changes = "\n".join(
                str(change.get(k) or "")
                for change in data.get("changes") or []
                if isinstance(change, dict)
                for k in ("heading", "text")
                if change.get(k)
            )
            body = "\n".join(p for p in (str(data.get("rationale") or ""), changes) if p)
            self._put(db, entry, 0, "amendment", subject, amendment_id, label, body)
        elif entry.type == "meeting.scheduled":
            replace_row(
                db,
                MEETINGS,
                {"id": subject},
                entry.index,
                {"title": _clean(str(data.get("title") or ""))},
            )
        elif entry.type == "meeting.outcome_recorded":
            outcome_id = str(data["outcome_id"])
            title = current_field(db, MEETINGS, {"id": subject}, "title") or ""
            label = f"Outcome {outcome_id}" + (f" of {title}" if title else "")
            body = "\n".join(
                str(item.get("text") or "")
                for item in data.get("items") or []
                if isinstance(item, dict) and item.get("text")
            )
            self._put(db, entry, 0, "outcome", subject, outcome_id, label, body)
        elif entry.type in ("publication.published", "publication.embargoed"):
            title = str(data.get("title") or "")
            self._put(db, entry, 0, "publication", subject, "", title, "")

    @staticmethod
    def _current_title(db: Db, kind: str, ref_id: str, sub_id: str) -> str | None:
        found = current_field(db, DOCS, {"kind": kind, "ref_id": ref_id, "sub_id": sub_id}, "title")
        return None if found is None else str(found)

    @staticmethod
    def _put(
        db: Db,
        entry: Entry,
        position: int,
        kind: str,
        ref_id: str,
        sub_id: str,
        title: str,
        body: str,
    ) -> None:
        """Close the document in force for (kind, ref_id, sub_id) and open its successor
        (written behind, with the runner's batch)."""
        replace_row(
            db,
            DOCS,
            {"kind": kind, "ref_id": ref_id, "sub_id": sub_id},
            entry.index,
            {
                "doc_id": entry.index * _PER_ENTRY + position,
                "title": _clean(title),
                "body": _clean(body),
            },
        )


def _fts5_query(query: str) -> str:
    """The words of ``query`` as FTS5 strings joined by spaces (all must match).

    Every term is quoted, so FTS5 syntax in it (quotes, ``*``, ``:``, parentheses, ``AND``,
    ``OR``, ``NOT``, ``NEAR``) is only text; terms with no letter or digit are dropped.
    """
    terms = [t for t in query.split() if any(ch.isalnum() for ch in t)]
    return " ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _after_clause(
    after: Sequence[Any] | None, score: str, alias: str, rank_type: str = ""
) -> tuple[str, list[Any]]:
    """The keyset condition "ranked after ``after``" (a hit's ``(rank, index, kind, ref_id,
    sub_id)``) and its parameters; nothing when ``after`` is None. ``rank_type`` casts the
    rank parameter to the score's own type (PostgreSQL's ``real``: the rank went out as the
    shortest decimal of that ``real``, and only a cast back compares equal)."""
    if after is None:
        return "", []
    rank, index, kind, ref_id, sub_id = after
    mark = f"(?)::{rank_type}" if rank_type else "?"
    later = f"({alias}valid_from, {alias}kind, {alias}ref_id, {alias}sub_id) > (?, ?, ?, ?)"
    return (
        f" AND ({score} < {mark} OR ({score} = {mark} AND {later}))",
        [rank, rank, index, kind, ref_id, sub_id],
    )


def search(
    db: Db,
    query: str,
    at: int,
    *,
    kinds: Sequence[str] | None = None,
    limit: int = 20,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Documents in force at index ``at`` that match ``query``, best first.

    Each hit is ``{"kind", "ref_id", "sub_id", "title", "snippet", "index", "rank"}``:
    ``snippet`` is a short excerpt with the matched words between ``«`` and ``»``, ``index``
    the log index that made the document's text, ``rank`` a relevance score (higher is
    better; comparable within one answer only). All words must match (SQLite matches
    stemmed words in order-free AND; PostgreSQL takes web-search syntax: ``"a phrase"``,
    ``or``, ``-word``). An empty query, or one with no words, finds nothing; no query
    raises; words beyond the first 32 are ignored. ``kinds`` restricts the hits to those
    kinds of document (an unknown kind is an ``InvalidInputError``).

    Keyset paging: ``after`` is the ``(rank, index, kind, ref_id, sub_id)`` of the last hit
    of the previous page; only hits ranked after it are returned. On PostgreSQL a rank
    depends only on the document and the query, so pages at a fixed ``at`` are exact. On
    SQLite ``bm25`` weighs words by how common they are in the whole index, which includes
    documents indexed after ``at``: new text recorded between two pages can shift ranks and
    so, rarely, repeat or skip a hit at a page boundary.
    """
    if kinds is not None:
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise InvalidInputError(
                f"unknown search kind {', '.join(unknown)} (have {', '.join(KINDS)})"
            )
        if not kinds:
            return []
    query = " ".join(query.replace("\x00", " ").split()[:_MAX_TERMS])
    if not query or limit <= 0:
        return []
    chosen = sorted(set(kinds)) if kinds is not None else []
    by_kind = f" AND d.kind IN ({', '.join('?' * len(chosen))})" if chosen else ""
    current = "d.valid_from <= ? AND (d.valid_to IS NULL OR d.valid_to > ?)"
    if db.dialect == "sqlite":
        match = _fts5_query(query)
        if not match:
            return []
        ranked = (
            f"SELECT d.kind, d.ref_id, d.sub_id, d.title, "
            f"snippet({FTS}, -1, '{_MARK_OPEN}', '{_MARK_CLOSE}', '…', 16) AS snippet, "
            f"d.valid_from, -bm25({FTS}, 4.0, 1.0) AS score "
            f"FROM {FTS} JOIN {DOCS} d ON d.doc_id = {FTS}.rowid "
            f"WHERE {FTS} MATCH ? AND {current}{by_kind}"
        )
        if after is None:
            rows = db.all(
                f"{ranked} ORDER BY score DESC, d.valid_from, d.kind, d.ref_id, d.sub_id LIMIT ?",
                [match, at, at, *chosen, limit],
            )
        else:
            # bm25() only works in the full-text query itself: rank there, page outside.
            later, params = _after_clause(after, "hit.score", "hit.")
            rows = db.all(
                "SELECT hit.kind, hit.ref_id, hit.sub_id, hit.title, hit.snippet, "
                f"hit.valid_from, hit.score FROM ({ranked}) AS hit WHERE 1 = 1{later} "
                "ORDER BY hit.score DESC, hit.valid_from, hit.kind, hit.ref_id, hit.sub_id LIMIT ?",
                [match, at, at, *chosen, *params, limit],
            )
    else:
        later, params = _after_clause(after, "ts_rank_cd(d.tsv, q.q)", "d.", "real")
        rows = db.all(
            "SELECT hit.kind, hit.ref_id, hit.sub_id, hit.title, "
            f"ts_headline('english', hit.indexed, hit.q, '{_HEADLINE}'), hit.valid_from, "
            "hit.score FROM ("
            "SELECT d.kind, d.ref_id, d.sub_id, d.title, d.valid_from, q.q, "
            f"concat_ws(E'\\n', NULLIF({_indexed_title_sql('d.')}, ''), "
            "d.body) AS indexed, ts_rank_cd(d.tsv, q.q) AS score "
            f"FROM {DOCS} d, websearch_to_tsquery('english', ?) AS q(q) "
            f"WHERE d.tsv @@ q.q AND {current}{by_kind}{later} "
            "ORDER BY score DESC, d.valid_from, d.kind, d.ref_id, d.sub_id LIMIT ?"
            ") AS hit ORDER BY hit.score DESC, hit.valid_from, hit.kind, hit.ref_id, hit.sub_id",
            [query, at, at, *chosen, *params, limit],
        )
    return [
        {
            "kind": r[0],
            "ref_id": r[1],
            "sub_id": r[2],
            "title": r[3],
            "snippet": r[4],
            "index": int(r[5]),
            "rank": float(r[6]),
        }
        for r in rows
    ]
