"""The officials' workspace: record the policy process through the browser.

Officials sign in with their API token (exchanged for a session cookie, ``api.sessions``) and
record every command through plain HTML forms that work without JavaScript: each checks the
role, the session's CSRF token and the version the official saw, shows the ledger's own
errors next to the form, and ends with the entry's receipt.
"""

from __future__ import annotations

from api.workspace.routes import router

__all__ = ["router"]
