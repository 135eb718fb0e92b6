"""How every write runs: authenticate, precondition, idempotency, command, receipt.

* ``If-Match: "<version>"`` (or ``expected_version`` where a command has no other version)
  makes the command act only on that version of its record; otherwise a 409 names the
  current version. Without it, a write that raced another on the same record is re-decided
  on the newer state (up to a few times) — the domain's rules are checked again each time.
* ``Idempotency-Key``: the first write with a key records the key in the same transaction
  as its entry; a retry (same token, same key, same request) writes nothing and gets the
  first receipt back (``Idempotent-Replayed: true``); the same key with a different request
  is a 422. The idempotency table is not trusted on its own: a replay answers only if the
  entry it names was written by this official, is about this request's record (or one
  the request created) and is of this request's kind; otherwise a 409 and nothing written.
* Every write is re-checked against its token's revocation under the store's write lock
  (``LedgerApplication.writing_token``): a write still in flight when its token's
  revocation commits is refused with 401 and writes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from fastapi import Request

from api.auth import Principal
from api.deps import Readers
from api.errors import ProblemError
from api.responses import JSONResponse
from ledger.actors import Actor
from ledger.application import LedgerApplication, Receipt
from ledger.errors import ConcurrentWriteError, NotFoundError
from ledger.storage.side import IdempotentWrite, SideStore
from ledger.tokens import TokenRevokedError

__all__ = ["Command", "receipt_response", "run_write", "token_checked"]

Command = Callable[[LedgerApplication, Actor, int | None], Receipt]

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_RETRIES = 5
log = logging.getLogger("ledger.security")
# The kind of record each write path's first segment acts on (``subject.kind``).
_KINDS = {
    "processes": "process",
    "organisations": "organisation",
    "proposals": "proposal",
    "meetings": "meeting",
    "consultations": "consultation",
    "publications": "publication",
    "corrections": "correction",
    "people": "person",
    "tokens": "access_token",
}


def _if_match(request: Request) -> int | None:
    value = request.headers.get("if-match")
    if value is None or value.strip() == "*":
        return None
    found = _ETAG.match(value)
    if found is None:
        raise ProblemError(
            400,
            "Invalid If-Match",
            f'If-Match must be the version the change acts on, like "3" (got {value!r})',
        )
    return int(found.group(1))


def receipt_response(
    receipt: Receipt,
    *,
    status: int,
    location: str | None = None,
    replayed: bool = False,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    fields = receipt.fields
    body = {
        **receipt.as_dict(),
        "type": fields["type"],
        "subject": fields["subject"],
        "as_of_index": receipt.index,
        **(extra or {}),
    }
    headers = {
        "ETag": f'"{fields["subject"]["version"]}"',
        "X-Ledger-Index": str(receipt.index),
    }
    if location:
        headers["Location"] = location
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=status, headers=headers)


def _committed_receipt(request: Request, index: int, tree_size: int) -> Receipt:
    """The receipt of an entry already committed, with the checkpoint it was given.

    Read with this worker thread's own latest-commit reader (``entries`` and ``checkpoint``
    only: ``rows`` is a server-side cursor, which PostgreSQL refuses in autocommit mode).
    """
    app: LedgerApplication = request.app.state.ledger
    readers: Readers = request.app.state.readers
    reader = readers.get()
    found = reader.entries(index, index + 1)
    checkpoint = reader.checkpoint(tree_size)
    if not found or checkpoint is None:
        raise NotFoundError(f"no entry {index} in a checkpoint of size {tree_size}")
    entry = found[0]
    return Receipt(
        index,
        hashlib.sha256(entry).hexdigest(),
        entry,
        tree_size,
        checkpoint[2],
        tuple(app.inclusion_proof(index, tree_size)),
    )


def _replay_mismatch(
    request: Request, principal: Principal, body: Any, fields: dict[str, Any]
) -> str | None:
    """Why the entry an idempotency row names cannot be this request's; None if it can."""
    if fields.get("actor") != principal.actor.as_entry():
        return "it was written by another official"
    subject = fields.get("subject")
    if not isinstance(subject, dict):
        return "it names no record"
    segments = request.url.path.strip("/").split("/")
    kind = _KINDS.get(segments[0]) if segments else None
    if kind is not None and subject.get("kind") != kind:
        return f"it is about a {subject.get('kind')}, not a {kind}"
    subject_id = str(subject.get("id"))
    if subject_id in {str(v) for v in request.path_params.values()}:
        return None
    if subject.get("version") != 1:
        return "it is about another record"
    given = body.get("id") if isinstance(body, dict) else None
    if given is not None and str(given) != subject_id:
        return "it created another record"
    return None


def _fingerprint(request: Request, body: Any) -> str:
    try:
        payload = orjson.dumps(body, option=orjson.OPT_SORT_KEYS) if body is not None else b""
    except orjson.JSONEncodeError:
        raise ProblemError(
            422,
            "Invalid text",
            "the body contains text that is not valid Unicode (a lone surrogate)",
        ) from None
    return hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + payload
    ).hexdigest()


def _refuse_replay(principal: Principal, key: str, earlier: IdempotentWrite, why: str) -> None:
    log.warning(
        "idempotency row of token %s, key %r, names entry %d, which is not its write (%s)",
        principal.token_id,
        key,
        earlier.index,
        why,
    )
    raise ProblemError(
        409,
        "Idempotency record does not match",
        f"this Idempotency-Key's stored record names log index {earlier.index}, which is not "
        f"this request's write ({why}); nothing was recorded or replayed: use a new key",
        first_index=earlier.index,
    )


@contextmanager
def token_checked(app: LedgerApplication, principal: Principal) -> Iterator[None]:
    """Writes inside are refused with 401 "Token revoked" (nothing written) if the token's
    revocation committed before their transaction took the store's write lock."""
    try:
        with app.writing_token(principal.token_id):
            yield
    except TokenRevokedError as exc:
        raise ProblemError(
            401,
            "Token revoked",
            f"{exc} (the revocation was committed before this write)",
            headers={"WWW-Authenticate": 'Bearer realm="open-policy-ledger"'},
        ) from None


def run_write(
    request: Request,
    principal: Principal,
    command: Command,
    *,
    body: Any,
    created: str | None = None,
) -> JSONResponse:
    """Run ``command`` for ``principal`` with the request's preconditions; answer a receipt.

    ``created`` (a kind's path, like ``/proposals``, or ``/entries/{index}`` for records
    with no page of their own) makes a 201 with a Location to the new record; other writes
    answer 200.
    """
    app: LedgerApplication = request.app.state.ledger
    side: SideStore = request.app.state.side
    expected = _if_match(request)
    status = 201 if created else 200

    def respond(receipt: Receipt, replayed: bool = False) -> JSONResponse:
        if created and "{index}" in created:
            location: str | None = created.format(index=receipt.index)
        else:
            location = f"{created}/{receipt.subject_id}" if created else None
        return receipt_response(receipt, status=status, location=location, replayed=replayed)

    key = request.headers.get("idempotency-key")
    fingerprint = _fingerprint(request, body)
    if key is not None:
        if not _KEY.match(key):
            raise ProblemError(400, "Invalid Idempotency-Key", "use 1–200 visible ASCII characters")

        def replay() -> JSONResponse | None:
            earlier = side.idempotent(principal.token_id, key)
            if earlier is None:
                return None
            if earlier.fingerprint != fingerprint:
                raise ProblemError(
                    422,
                    "Idempotency-Key reused",
                    "this Idempotency-Key was used for a different request; use a new key",
                    first_index=earlier.index,
                )
            receipt = _committed_receipt(request, earlier.index, earlier.tree_size)
            mismatch = _replay_mismatch(request, principal, body, receipt.fields)
            if mismatch is not None:
                _refuse_replay(principal, key, earlier, mismatch)
            return respond(receipt, replayed=True)

        answer = replay()
        if answer is not None:
            return answer
    for attempt in range(_RETRIES):
        try:
            with token_checked(app, principal):
                if key is not None:
                    with app.idempotent(principal.token_id, key, fingerprint):
                        receipt = command(app, principal.actor, expected)
                else:
                    receipt = command(app, principal.actor, expected)
        except ConcurrentWriteError:
            if key is not None:
                answer = replay()  # the same key, retried concurrently, may have won
                if answer is not None:
                    return answer
            if expected is not None or attempt == _RETRIES - 1:
                raise
            continue
        return respond(receipt)
    raise AssertionError("unreachable")  # pragma: no cover
