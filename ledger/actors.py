"""Who records an entry: the principal, their role and their organisation."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import InvalidInputError
from ledger.text import check_text

__all__ = ["ROLES", "Actor"]

ROLES = ("recorder", "publisher", "admin", "system")


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated official (or the system itself) acting for an organisation."""

    id: str
    role: str
    org: str

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise InvalidInputError("actor id must not be empty")
        if self.role not in ROLES:
            raise InvalidInputError(f"actor role must be one of {', '.join(ROLES)}")
        check_text("actor.id", self.id)  # once per actor, not per entry (ledger.text)
        check_text("actor.org", self.org)

    def as_entry(self) -> dict[str, str]:
        """The ``actor`` object written into entries."""
        return {"id": self.id, "role": self.role, "org": self.org}

    @classmethod
    def system(cls) -> Actor:
        """The ledger itself, for entries no official made."""
        return cls(id="system", role="system", org="")
