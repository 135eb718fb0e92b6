"""Read models rebuilt from the log: one module per view, plus the runner.

Dependencies point one way: ``api → projections → ledger``.
"""

from __future__ import annotations

from projections.base import View

__all__ = ["all_views"]


def all_views() -> list[View]:
    """A fresh instance of every read model the service keeps."""
    from projections.consultations import ConsultationsView
    from projections.meetings import MeetingsView
    from projections.organisations import OrganisationsView
    from projections.process import ProcessView
    from projections.proposals import ProposalsView
    from projections.publications import PublicationsView
    from projections.search import SearchView

    views: list[View] = [
        ProcessView(),
        OrganisationsView(),
        ProposalsView(),
        MeetingsView(),
        PublicationsView(),
        ConsultationsView(),
        SearchView(),
    ]
    return views
