"""Full-text search over the read models, identical in behaviour on every store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from ledger.application import LedgerApplication
from ledger.demo import record_demo
from ledger.storage import LogReader, open_reader
from projections.db import Db, connect_views
from projections.runner import Runner
from projections.search import SearchView, search
from tests.conftest import Store
from tests.helpers import OFFICIAL, record_sample

HIT_KEYS = {"kind", "ref_id", "sub_id", "title", "snippet", "index", "rank"}


@dataclass
class Searched:
    """A ledger holding the demo plus a small process of made-up words, and its search view."""

    db: Db
    reader: LogReader
    runner: Runner
    at: int
    proposal_id: str
    amendment_id: str
    amended_index: int
    revised_index: int
    meeting_id: str
    outcome_id: str
    publication_id: str

    def find(self, query: str, at: int | None = None, **options: Any) -> list[dict[str, Any]]:
        return search(self.db, query, self.at if at is None else at, **options)


def _data(entry: bytes) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(entry)["data"]
    return data


def _record(app: LedgerApplication) -> dict[str, Any]:
    """Record the made-up words: each appears in one kind of text only."""
    sample = record_sample(app, amendments=0)
    org = sample.org_ids[0]
    tabled = app.table_proposal(
        process_id=sample.process_id,
        strand_id="research",
        title="Register of zanthoxylum records",
        sections=[
            {"id": "s1", "heading": "Purpose", "text": "The gryphonite register shall be kept."},
            {"id": "s2", "heading": "Safeguards", "text": "Only accredited researchers."},
        ],
        sponsor_org=org,
        actor=OFFICIAL,
    )
    pid = tabled.subject_id
    proposed = app.propose_amendment(
        pid,
        base_version=1,
        changes=[
            {"op": "replace", "section_id": "s1", "text": "The marmaladeworks office keeps it."}
        ],
        rationale="Say who keeps it, per the obelisque principle.",
        proposer_org=sample.org_ids[1],
        meeting_id=sample.meeting_id,
        actor=OFFICIAL,
    )
    amendment_id = _data(proposed.entry)["amendment_id"]
    app.decide_amendment(
        pid,
        amendment_id=amendment_id,
        decision="agreed",
        consensus="banked",
        meeting_id=sample.meeting_id,
        actor=OFFICIAL,
    )
    revised = app.revise_proposal(
        pid, base_version=1, amendment_ids=[amendment_id], meeting_id=sample.meeting_id,
        actor=OFFICIAL,
    )  # fmt: skip
    outcome = app.record_meeting_outcome(
        sample.meeting_id,
        items=[{"kind": "action", "text": "Ask the fennelwort panel for advice."}],
        actor=OFFICIAL,
    )
    published = app.publish(
        process_id=sample.process_id,
        pub_kind="report",
        title="Quixotry consultation summary",
        sha256=hashlib.sha256(b"report").hexdigest(),
        size=6,
        media_type="text/markdown",
        actor=OFFICIAL,
    )
    return {
        "proposal_id": pid,
        "amendment_id": amendment_id,
        "amended_index": proposed.index,
        "revised_index": revised.index,
        "meeting_id": sample.meeting_id,
        "outcome_id": _data(outcome.entry)["outcome_id"],
        "publication_id": published.subject_id,
    }


@pytest.fixture
def searched(store: Store) -> Iterator[Searched]:
    """The demo and the made-up process recorded, and the search view caught up."""
    app = LedgerApplication(store.settings)
    try:
        record_demo(app)
        made = _record(app)
    finally:
        app.close()
    db = connect_views(store.settings)
    reader = open_reader(store.settings, snapshot=False)
    try:
        runner = Runner(db, reader, [SearchView()])
        runner.setup()
        runner.catch_up()
        yield Searched(db, reader, runner, runner.as_of_index(None), **made)
    finally:
        reader.close()
        db.close()


def _refs(hits: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(h["kind"], h["ref_id"], h["sub_id"]) for h in hits]


def test_section_word_finds_the_proposal(searched: Searched) -> None:
    """A word in one proposal's section text only finds that proposal, marked in the snippet."""
    hits = searched.find("accredited researchers", searched.revised_index - 1)
    assert ("proposal", searched.proposal_id, "") in _refs(hits)
    hits = searched.find("gryphonite", searched.revised_index - 1)
    assert _refs(hits) == [("proposal", searched.proposal_id, "")]
    hit = hits[0]
    assert set(hit) == HIT_KEYS
    assert hit["title"] == "Register of zanthoxylum records"
    assert "«gryphonite»" in hit["snippet"]
    assert isinstance(hit["rank"], float)
    assert _refs(searched.find("zanthoxylum")) == [("proposal", searched.proposal_id, "")]


def test_rationale_word_finds_the_amendment(searched: Searched) -> None:
    """A word only in an amendment's rationale finds the amendment, still after its decision."""
    expected = [("amendment", searched.proposal_id, searched.amendment_id)]
    assert _refs(searched.find("obelisque", searched.amended_index)) == expected
    assert _refs(searched.find("obelisque")) == expected
    assert _refs(searched.find("obelisque", searched.amended_index - 1)) == []
    hit = searched.find("obelisque")[0]
    assert hit["index"] == searched.amended_index
    assert hit["title"].startswith(f"Amendment {searched.amendment_id}")


def test_outcome_item_word_finds_the_outcome(searched: Searched) -> None:
    """A word in a meeting outcome's item text finds that outcome."""
    hits = searched.find("fennelwort")
    assert _refs(hits) == [("outcome", searched.meeting_id, searched.outcome_id)]
    assert "«fennelwort»" in hits[0]["snippet"]


def test_publication_title_word_finds_the_publication(searched: Searched) -> None:
    """A word in a publication's title finds that publication."""
    hits = searched.find("quixotry")
    assert _refs(hits) == [("publication", searched.publication_id, "")]
    assert hits[0]["title"] == "Quixotry consultation summary"


def test_search_as_of_an_index_sees_the_text_then_in_force(searched: Searched) -> None:
    """A revision's new word is found only from the revision on, a removed word only before."""
    before, after = searched.revised_index - 1, searched.revised_index
    proposal = [("proposal", searched.proposal_id, "")]
    only = {"kinds": ["proposal"]}
    assert _refs(searched.find("marmaladeworks", before, **only)) == []
    assert _refs(searched.find("marmaladeworks", after, **only)) == proposal
    assert searched.find("marmaladeworks", after, **only)[0]["index"] == after
    assert _refs(searched.find("gryphonite", before)) == proposal
    assert _refs(searched.find("gryphonite", after)) == []
    assert _refs(searched.find("gryphonite")) == []
    assert searched.find("gryphonite", -1) == []


HOSTILE = [
    '"', "*", "a AND", "NEAR(", "());--", "OR", "NOT gateway", "title:gateway", "a*b^c",
    "\"unbalanced 'quotes", "données 数据 🚀", "\x00", "- -- !", "{col}: ^x", "x" * 5000,
    "(" * 5000 + "a",
    " ".join(f"w{n} OR" for n in range(20_000)),
]  # fmt: skip


def test_hostile_queries_never_raise(searched: Searched) -> None:
    """Queries full of search syntax or odd characters return a list of hits, never raise."""
    for query in HOSTILE:
        hits = searched.find(query)
        assert isinstance(hits, list), query
        assert all(set(h) == HIT_KEYS for h in hits), query
    for empty in ["", "   ", "\t\n"]:
        assert searched.find(empty) == []


def test_rebuild_gives_identical_results(searched: Searched) -> None:
    """Rebuilding the view from the log gives the very same hits at every index asked."""
    queries = ["gryphonite", "marmaladeworks", "obelisque", "data sharing", "research", "gateway"]
    points = [searched.amended_index - 1, searched.revised_index - 1, searched.at, 100]

    def answers() -> list[list[dict[str, Any]]]:
        return [searched.find(q, at, limit=50) for q in queries for at in points]

    first = answers()
    assert any(first)
    searched.runner.rebuild()
    assert searched.runner.as_of_index(None) == searched.at
    assert answers() == first


def test_kinds_filter_and_limit(searched: Searched) -> None:
    """``kinds`` keeps only the kinds asked for, ``limit`` caps the hits, best first."""
    everything = searched.find("marmaladeworks")
    assert set(_refs(everything)) == {
        ("proposal", searched.proposal_id, ""),
        ("amendment", searched.proposal_id, searched.amendment_id),
    }
    assert _refs(searched.find("marmaladeworks", kinds=["amendment"])) == [
        ("amendment", searched.proposal_id, searched.amendment_id)
    ]
    assert searched.find("marmaladeworks", kinds=["outcome", "publication"]) == []
    assert searched.find("marmaladeworks", kinds=[]) == []
    with pytest.raises(ValueError, match="unknown search kind"):
        searched.find("marmaladeworks", kinds=["meeting"])
    demo = searched.find("data", limit=50)
    assert len({h["kind"] for h in demo}) > 1
    ranks = [h["rank"] for h in demo]
    assert ranks == sorted(ranks, reverse=True)
    assert searched.find("data", limit=3) == demo[:3]
    assert all(h["kind"] == "proposal" for h in searched.find("data", kinds=["proposal"]))
