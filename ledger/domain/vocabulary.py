"""The process's fixed vocabularies: the values an enumerated field may take.

Declared once here; the command declarations (:mod:`ledger.domain.commands`) and the
records' rules (:mod:`ledger.aggregates`) both read them.
"""

from __future__ import annotations

__all__ = [
    "CONSENSUS_STATES",
    "DECISIONS",
    "DISCLOSURE_MODES",
    "GOVERNMENT_RESPONSES",
    "ORGANISATION_KINDS",
    "OUTCOME_ITEM_KINDS",
    "PUBLICATION_KINDS",
    "TOKEN_ROLES",
]

ORGANISATION_KINDS = (
    "department",
    "local_authority",
    "public_body",
    "civil_society",
    "academic",
    "advisory_group",
    "business",
)
DISCLOSURE_MODES = ("on_record", "non_attributed", "chatham_house", "private")
DECISIONS = ("agreed", "disagreed", "withdrawn", "no_decision")
CONSENSUS_STATES = ("banked", "still_to_discuss", "options")
OUTCOME_ITEM_KINDS = ("decision", "action", "agreement", "disagreement", "option")
PUBLICATION_KINDS = (
    "meeting_note",
    "minutes",
    "discussion_paper",
    "policy_paper",
    "consultation_document",
    "consultation_response",
    "report",
    "legislation",
    "other",
)
TOKEN_ROLES = ("recorder", "publisher", "admin")
GOVERNMENT_RESPONSES = ("accepted", "partly", "rejected")
