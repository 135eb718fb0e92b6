"""The domain: what can be recorded, declared once.

:mod:`ledger.domain.commands` declares every command (its typed fields, the record it acts
on, the roles it needs, its HTTP route); :mod:`ledger.domain.fields` holds the field types
and the validator every channel shares. Standard library only, plus :mod:`ledger.errors`
and :mod:`ledger.text`: no web framework, no database.
"""

from __future__ import annotations

from ledger.domain.commands import COMMANDS, Command, command, validate
from ledger.domain.fields import Field, FieldError

__all__ = ["COMMANDS", "Command", "Field", "FieldError", "command", "validate"]
