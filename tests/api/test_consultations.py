"""Consultations over HTTP, on both backends: lifecycle, sealed individuals, consent, erasure
and the process rules."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from ledger.keys import create_master_key_file
from tests.api.test_personal_data import scan_store
from tests.api.test_writes import SETUP, World, check_receipt, open_api, poll, problem
from tests.conftest import Store

NAME = "Qwertzu Asdfghj"
EMAIL = "qwertzu.asdf@example.org"
SECRET_ANSWER = "Mnbvcxz private opinion"
NEEDLES = [NAME.encode(), EMAIL.encode(), b"Qwertzu", b"Asdfghj", SECRET_ANSWER.encode()]


def _individual(person: str, consent: bool, text: str, name: str = NAME) -> dict[str, Any]:
    return {
        "individual": {"person_id": person, "name": name, "email": EMAIL},
        "consent_to_publish": consent,
        "answers": [{"question_id": "q1", "text": text}],
    }


def test_consultation_lifecycle_with_sealed_individuals(store: Store, tmp_path: Path) -> None:
    master = tmp_path / "master.key"
    create_master_key_file(master)
    with open_api(store, master_key_file=master) as api:
        recorder = api.officials["recorder"]
        world = World(api)
        opened = api.post(
            "/consultations",
            recorder,
            {
                "process_id": world.process,
                "title": "Open data consultation",
                "questions": [{"id": "q1", "text": "Agree?"}, {"id": "q2", "text": "Why?"}],
                "documents": [world.document],
                "closes_at": "2099-01-01T00:00:00Z",
            },
        )
        cid = check_receipt(api, opened, recorder, created="/consultations")["subject"]["id"]
        unknown = api.post(
            "/consultations",
            recorder,
            {
                "process_id": world.process,
                "title": "T",
                "questions": [{"id": "q1", "text": "Q"}],
                "documents": ["0" * 64],
                "closes_at": "2099-01-01T00:00:00Z",
            },
        )
        problem(unknown, 422)

        org = api.post(
            f"/consultations/{cid}/responses",
            recorder,
            {"org_id": api.org_id, "answers": [{"question_id": "q1", "text": "Org says yes"}]},
        )
        check_receipt(api, org, recorder)
        consenting, private = str(uuid.uuid4()), str(uuid.uuid4())
        yes = api.post(
            f"/consultations/{cid}/responses",
            recorder,
            _individual(consenting, True, "Published opinion"),
        )
        entry = check_receipt(api, yes, recorder)["entry"]
        no = api.post(
            f"/consultations/{cid}/responses", recorder, _individual(private, False, SECRET_ANSWER)
        )
        entry += check_receipt(api, no, recorder)["entry"]
        for needle in NEEDLES:
            assert needle.decode().lower() not in entry.lower()
        problem(  # a question the consultation does not ask
            api.post(
                f"/consultations/{cid}/responses",
                recorder,
                {"org_id": api.org_id, "answers": [{"question_id": "q9", "text": "x"}]},
            ),
            422,
        )
        # review before close is refused
        review = {
            "reviewer_org": api.org_id,
            "findings": ["Broad support"],
            "recommendations": [{"id": "r1", "text": "Proceed"}, {"id": "r2", "text": "Pause"}],
        }
        size = api.size()
        problem(api.post(f"/consultations/{cid}/review", recorder, review), 422)
        assert api.size() == size
        check_receipt(api, api.post(f"/consultations/{cid}/close", recorder, {}), recorder)
        # late responses are refused
        problem(
            api.post(
                f"/consultations/{cid}/responses",
                recorder,
                {"org_id": api.org_id, "answers": [{"question_id": "q1", "text": "late"}]},
            ),
            422,
        )
        problem(
            api.post(f"/consultations/{cid}/responses", recorder, _individual(private, True, "x")),
            422,
        )
        assert api.size() == size + 1
        check_receipt(api, api.post(f"/consultations/{cid}/review", recorder, review), recorder)
        answer = {"recommendation_id": "r1", "response": "accepted", "text": "We will"}
        path = f"/consultations/{cid}/government-response"
        check_receipt(api, api.post(path, recorder, answer), recorder)
        problem(api.post(path, recorder, answer), 422)  # once per recommendation
        problem(api.post(path, recorder, {**answer, "recommendation_id": "r9"}), 422)
        problem(
            api.post(path, recorder, {**answer, "recommendation_id": "r2", "response": "x"}), 422
        )
        final = check_receipt(
            api,
            api.post(
                path, recorder, {"recommendation_id": "r2", "response": "partly", "text": "In part"}
            ),
            recorder,
        )

        public = poll(
            api,
            f"/consultations/{cid}?as_of={final['index']}",
            lambda r: r.status_code == 200 and len(r.json()["government_responses"]) == 2,
        ).json()
        assert public["status"] == "closed"
        assert public["questions"][0] == {"id": "q1", "text": "Agree?"}
        assert public["documents"] == [world.document]
        assert (public["response_count"], public["organisation_responses"]) == (3, 1)
        assert public["individual_responses"] == 2
        assert public["published_individual_responses"] == 1
        responses = public["responses"]
        assert [r["respondent"] for r in responses] == ["an organisation", "an individual"]
        assert responses[0]["org_id"] == api.org_id
        assert responses[1]["org_id"] is None
        assert responses[1]["answers"] == [{"question_id": "q1", "text": "Published opinion"}]
        assert public["review"]["findings"] == ["Broad support"]
        assert [g["response"] for g in public["government_responses"]] == ["accepted", "partly"]
        listing = api.client.get("/consultations").json()
        assert [c["id"] for c in listing["items"]] == [cid]
        text = api.client.get(f"/consultations/{cid}").text + api.client.get("/consultations").text
        for needle in NEEDLES:
            assert needle.decode().lower() not in text.lower()
        assert scan_store(store, NEEDLES) == []

        # officials read the individuals decrypted
        officials = api.client.get(f"/consultations/{cid}/respondents", headers=recorder.auth)
        assert officials.status_code == 200, officials.text
        people = {p["person"]: p for p in officials.json()["respondents"]}
        assert people[private]["name"] == NAME
        assert people[private]["email"] == EMAIL
        assert api.client.get(f"/consultations/{cid}/respondents").status_code == 401

        # erasure: their sealed data is unreadable, the consultation still reads
        erased = api.post(
            f"/people/{private}/erasure",
            api.officials["admin"],
            {"legal_basis": "UK GDPR Art. 17", "authorised_by": "DPO"},
        )
        assert erased.status_code == 200, erased.text
        after = api.client.get(f"/consultations/{cid}/respondents", headers=recorder.auth).json()
        people = {p["person"]: p for p in after["respondents"]}
        assert people[private] == {"person": private, "erased": True}
        assert people[consenting]["erased"] is False
        again = api.client.get(f"/consultations/{cid}", params={"as_of": final["index"]})
        assert again.status_code == 200
        assert again.json()["responses"] == responses
        assert api.ledger.get_consultation(cid).response_count == 3


def test_organisation_only_consultation_needs_no_master_key(store: Store) -> None:
    with open_api(store) as api:
        world = World(api)
        cid = world.consultation()
        recorder = api.officials["recorder"]
        ok = api.post(
            f"/consultations/{cid}/responses",
            recorder,
            {"org_id": api.org_id, "answers": [{"question_id": "q1", "text": "Yes"}]},
        )
        check_receipt(api, ok, recorder)
        refused = api.post(
            f"/consultations/{cid}/responses",
            recorder,
            _individual(str(uuid.uuid4()), True, "x"),
        )
        problem(refused, 422)
        past = api.ledger.open_consultation(
            process_id=world.process,
            title="Past",
            questions=[{"id": "q1", "text": "Q"}],
            closes_at="2000-01-01T00:00:00Z",
            actor=SETUP,
        ).subject_id
        late = api.post(
            f"/consultations/{past}/responses",
            recorder,
            {"org_id": api.org_id, "answers": [{"question_id": "q1", "text": "late"}]},
        )
        assert "closed" in problem(late, 422)["detail"]
