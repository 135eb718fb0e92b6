"""Every way an official writes is ordered with its token's revocation: workspace forms
(session cookie and CSRF) and ``POST /tokens`` too, not only the JSON write routes.

Writers keep writing with a fresh token while an admin revokes it; no entry by that token may
have a log index above its revocation entry's. Both stores.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable

import httpx

from tests.api.test_side_trust import _entries
from tests.api.test_writes import Api, Official, open_api
from tests.conftest import Store

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _race(
    api: Api,
    store: Store,
    racer: Official,
    write: Callable[[], int],
    refused: set[int],
    threads: int = 8,
) -> None:
    """``threads`` writers call ``write`` until it answers other than 201 while an admin
    revokes ``racer``; asserts nothing by ``racer`` follows the revocation entry."""
    stop = threading.Event()
    answers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer() -> None:
        while not stop.is_set():
            try:
                status = write()
            except Exception as exc:  # kept, so the thread always ends
                status = -1
                errors.append(exc)
            with lock:
                answers.append(status)
            if status != 201:
                return

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(0.3)
    admin = api.officials["admin"]
    revoked = api.post(f"/tokens/{racer.token_id}/revocation", admin, {"reason": "race"})
    assert revoked.status_code == 200, revoked.text
    revocation = revoked.json()["index"]
    time.sleep(0.2)
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers)
    assert not errors, errors
    by_racer = [e["index"] for e in _entries(store) if e["actor"]["id"] == racer.principal]
    assert by_racer, "the token wrote nothing before its revocation"
    late = [index for index in by_racer if index > revocation]
    assert not late, f"entries {late} by the token follow its revocation at {revocation}"
    assert set(answers) <= {201} | refused, answers


def _sign_in(client: httpx.Client, token: str) -> str:
    """Sign in to the workspace as a browser would; the session's CSRF token."""
    form = client.get("/workspace/sign-in")
    found = _CSRF.search(form.text)
    assert found, form.text
    answer = client.post(
        "/workspace/sign-in",
        data={"token": token, "csrf": found.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    home = client.get("/workspace")
    found = _CSRF.search(home.text)
    assert home.status_code == 200, home.text
    assert found, home.text
    return found.group(1)


def test_no_workspace_form_lands_after_its_tokens_revocation(store: Store) -> None:
    """A form posted with a session whose token's revocation commits while it is in flight
    is refused (401 page, nothing written); once the revocation is seen the session ends
    (303 to sign-in). Six rounds, eight writers each."""
    with open_api(store, write_rate=0.0) as api:
        api.client.base_url = httpx.URL("https://testserver")  # the session cookie is Secure
        for _ in range(6):
            racer = api.official("recorder", f"clerk-{uuid.uuid4().hex[:8]}")
            api.client.cookies.clear()
            csrf = _sign_in(api.client, racer.token)

            def write(csrf: str = csrf) -> int:
                answer = api.client.post(
                    "/workspace/forms/start-process",
                    data={"csrf": csrf, "title": "In flight"},
                    follow_redirects=False,
                )
                if answer.status_code == 401:
                    assert "Your token was revoked" in answer.text, answer.text
                return answer.status_code

            _race(api, store, racer, write, {303, 401})


def test_no_token_issued_by_an_admin_after_the_admins_revocation(store: Store) -> None:
    """``POST /tokens`` by an admin whose token's revocation commits while it is in flight
    is refused with 401 "Token revoked" and issues nothing. Six rounds, eight writers each."""
    with open_api(store, write_rate=0.0) as api:
        for _ in range(6):
            racer = api.official("admin", f"issuer-{uuid.uuid4().hex[:8]}")

            def write(racer: Official = racer) -> int:
                answer = api.post(
                    "/tokens",
                    racer,
                    {"principal": "in-flight-clerk", "org": api.org_id, "role": "recorder"},
                )
                if answer.status_code == 401:
                    assert answer.json()["title"] == "Token revoked", answer.text
                return answer.status_code

            _race(api, store, racer, write, {401})
