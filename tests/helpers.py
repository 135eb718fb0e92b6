"""A small, realistic slice of a policy process for tests to record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.actors import Actor
from ledger.aggregates import LedgerAggregate
from ledger.application import LedgerApplication, Receipt

OFFICIAL = Actor("j.smith", "recorder", "cabinet-office")
PUBLISHER = Actor("comms", "publisher", "cabinet-office")


@dataclass
class Sample:
    """Ids made while recording the sample, and every receipt in order."""

    process_id: str = ""
    org_ids: list[str] = field(default_factory=list)
    proposal_id: str = ""
    meeting_id: str = ""
    receipts: list[Receipt] = field(default_factory=list)


def record_sample(app: LedgerApplication, *, amendments: int = 3) -> Sample:
    """Record a process, organisations, a held meeting and an amended proposal."""
    s = Sample()
    keep = s.receipts.append
    r = app.start_process(title="Data sharing", summary="Open policy process", actor=OFFICIAL)
    keep(r)
    s.process_id = r.subject_id
    keep(app.add_strand(s.process_id, strand_id="research", title="Research", actor=OFFICIAL))
    for name, kind in [
        ("Cabinet Office", "department"),
        ("Privacy Group", "civil_society"),
        ("City Council", "local_authority"),
    ]:
        r = app.register_organisation(name=name, org_kind=kind, actor=OFFICIAL)
        keep(r)
        s.org_ids.append(r.subject_id)
    r = app.schedule_meeting(
        process_id=s.process_id,
        strand_id="research",
        title="Meeting 1",
        starts_at="2015-01-10T10:00:00Z",
        convenor_org=s.org_ids[0],
        actor=OFFICIAL,
    )
    keep(r)
    s.meeting_id = r.subject_id
    keep(
        app.record_meeting_held(
            s.meeting_id, attending_orgs=s.org_ids, held_at="2015-01-10T10:00:00Z", actor=OFFICIAL
        )
    )
    r = app.table_proposal(
        process_id=s.process_id,
        strand_id="research",
        title="Research access",
        sections=[
            {"id": "s1", "heading": "Purpose", "text": "Allow access."},
            {"id": "s2", "heading": "Safeguards", "text": "Accredit."},
        ],
        sponsor_org=s.org_ids[0],
        actor=OFFICIAL,
    )
    keep(r)
    s.proposal_id = r.subject_id
    for n in range(amendments):
        keep(
            app.propose_amendment(
                s.proposal_id,
                base_version=1,
                changes=[
                    {
                        "op": "replace",
                        "section_id": "s2",
                        "text": f"Accredit processors, draft {n}.",
                    }
                ],
                rationale="tighter",
                proposer_org=s.org_ids[1],
                meeting_id=s.meeting_id,
                actor=OFFICIAL,
            )
        )
    return s


def record_as_before(
    app: LedgerApplication, kind: type[LedgerAggregate], record_id: str, command: str, **args: Any
) -> Receipt:
    """Record a command by the record's own rules only, without the application's checks
    across records (the attribution rule at confidential meetings, say): what a log written
    by an earlier version may already hold."""
    record = app._get(kind, record_id)
    getattr(record, command)(**args, actor=OFFICIAL, at=app.clock())
    return app._commit(record)
