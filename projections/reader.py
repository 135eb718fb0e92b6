"""ReadModels: every read-model query in one place, each taking ``as_of`` and ``min_index``.

``as_of`` is a log index, an RFC 3339 UTC timestamp (the state after the last entry at or
before it) or None (the latest applied entry). ``min_index`` asks for read-your-writes: the
call waits (bounded) until the views have applied that entry. Every answer says the index it
reflects: single answers carry ``as_of_index``; lists come wrapped as
``{"as_of_index": k, "items": [...]}``.
"""

from __future__ import annotations

from typing import Any

from projections import meetings, organisations, process, proposals, publications, search
from projections.runner import Runner

__all__ = ["AsOf", "ReadModels"]

AsOf = int | str | None


class ReadModels:
    """Queries over a runner's views."""

    def __init__(self, runner: Runner, *, wait_timeout: float = 5.0) -> None:
        self.runner = runner
        self.db = runner.db
        self.wait_timeout = wait_timeout

    def at(self, as_of: AsOf = None, min_index: int | None = None) -> int:
        """The log index an answer reflects (after waiting for ``min_index`` if asked)."""
        if min_index is not None:
            self.runner.wait_for(min_index, timeout=self.wait_timeout)
        return self.runner.as_of_index(as_of)

    @staticmethod
    def _listing(at: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"as_of_index": at, "items": items}

    # proposals ------------------------------------------------------------------------

    def proposal(
        self, pid: str, as_of: AsOf = None, min_index: int | None = None
    ) -> dict[str, Any] | None:
        return proposals.get_proposal(self.db, pid, self.at(as_of, min_index))

    def proposals(
        self, as_of: AsOf = None, *, strand_id: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        at = self.at(as_of)
        return self._listing(
            at, proposals.list_proposals(self.db, at, strand_id=strand_id, status=status)
        )

    def versions(self, pid: str, as_of: AsOf = None) -> dict[str, Any]:
        at = self.at(as_of)
        return self._listing(at, proposals.versions(self.db, pid, at))

    def compare(self, pid: str, old: int, new: int, as_of: AsOf = None) -> dict[str, Any] | None:
        return proposals.compare(self.db, pid, old, new, self.at(as_of))

    def history(self, pid: str, as_of: AsOf = None) -> dict[str, Any]:
        at = self.at(as_of)
        return self._listing(at, proposals.history(self.db, pid, at))

    # registers --------------------------------------------------------------------------

    def meeting(self, meeting_id: str, as_of: AsOf = None) -> dict[str, Any] | None:
        return meetings.get_meeting(self.db, meeting_id, self.at(as_of))

    def meetings(self, as_of: AsOf = None, *, strand_id: str | None = None) -> dict[str, Any]:
        at = self.at(as_of)
        return self._listing(at, meetings.list_meetings(self.db, at, strand_id=strand_id))

    def publication(self, publication_id: str, as_of: AsOf = None) -> dict[str, Any] | None:
        return publications.get_publication(self.db, publication_id, self.at(as_of))

    def publications(self, as_of: AsOf = None, *, proposal_id: str | None = None) -> dict[str, Any]:
        at = self.at(as_of)
        return self._listing(
            at, publications.list_publications(self.db, at, proposal_id=proposal_id)
        )

    def organisation(self, org_id: str, as_of: AsOf = None) -> dict[str, Any] | None:
        return organisations.get_organisation(self.db, org_id, self.at(as_of))

    def organisations(self, as_of: AsOf = None, *, org_kind: str | None = None) -> dict[str, Any]:
        at = self.at(as_of)
        return self._listing(at, organisations.list_organisations(self.db, at, org_kind=org_kind))

    def process(self, process_id: str, as_of: AsOf = None) -> dict[str, Any] | None:
        return process.get_process(self.db, process_id, self.at(as_of))

    def timeline(self, as_of: AsOf = None, *, limit: int = 50) -> dict[str, Any]:
        at = self.at(as_of)
        return self._listing(at, process.timeline(self.db, at, limit=limit))

    def search(self, query: str, as_of: AsOf = None, *, limit: int = 20) -> dict[str, Any]:
        at = self.at(as_of)
        return self._listing(at, search.search(self.db, query, at, limit=limit))
