"""Read models rebuilt from the log: one module per view, plus the runner.

Dependencies point one way: ``api → projections → ledger``.
"""

from __future__ import annotations

from projections.base import View

__all__ = ["all_views"]


def all_views() -> list[View]:
    """A fresh instance of every read model the service keeps."""
    from projections.proposals import ProposalsView

    views: list[View] = [ProposalsView()]
    return views
