"""The workspace under test: the app in-process (TestClient over https so the Secure session
cookie is sent), a recorded sample, and one official per role."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.actors import Actor
from ledger.application import LedgerApplication
from tests.conftest import Store
from tests.helpers import Sample, record_sample

SETUP = Actor("setup", "admin", "")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Desk:
    """The running app, the sample recorded in it and a token per role."""

    client: TestClient
    app: LedgerApplication
    sample: Sample
    tokens: dict[str, str]

    def size(self) -> int:
        head = self.client.app.state.readers.get().head()  # type: ignore[attr-defined]
        return int(head.size) if head is not None else 0

    def post_sign_in(self, token: str, **kwargs: Any) -> Any:
        """Post the sign-in form as a browser would: fetch it first (its CSRF cookie and
        hidden field), then submit the token."""
        form = self.client.get("/workspace/sign-in")
        return self.client.post(
            "/workspace/sign-in", data={"token": token, "csrf": csrf_of(form.text)}, **kwargs
        )

    def sign_in(self, role: str) -> str:
        """Sign in as the official of ``role``; returns the session's CSRF token."""
        self.client.cookies.clear()
        answer = self.post_sign_in(self.tokens[role], follow_redirects=False)
        assert answer.status_code == 303, answer.text
        home = self.client.get("/workspace")
        assert home.status_code == 200
        return csrf_of(home.text)

    def caught_up(self) -> None:
        """Wait until the read models have applied every entry."""
        target = self.size() - 1
        models = self.client.app.state.read_models.get()  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while models.at(None) < target:
            assert time.monotonic() < deadline, "the read models never caught up"
            time.sleep(0.02)

    def form(self, slug: str, **params: str) -> str:
        answer = self.client.get(f"/workspace/forms/{slug}", params=params)
        assert answer.status_code == 200, answer.text
        return answer.text

    def post(self, slug: str, data: Any, files: Any = None) -> Any:
        return self.client.post(f"/workspace/forms/{slug}", data=data, files=files)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@pytest.fixture
def desk(store: Store) -> Iterator[Desk]:
    setup = LedgerApplication(store.settings)
    sample = record_sample(setup, amendments=1)
    cabinet = sample.org_ids[0]
    tokens = {
        role: setup.issue_token(principal=f"{role}.official", org=cabinet, role=role, actor=SETUP)[
            1
        ]
        for role in ("recorder", "publisher", "admin")
    }
    setup.close()
    api = create_app(store.settings)
    with TestClient(api, base_url="https://testserver") as client:
        ledger: LedgerApplication = api.state.ledger
        found = Desk(client, ledger, sample, tokens)
        found.caught_up()
        yield found
