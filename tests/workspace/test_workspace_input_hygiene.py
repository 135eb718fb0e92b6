"""The officials' forms under the text and slug rules (both stores): a control character or
a strand id that is not a slug is shown as a problem with the field and records nothing;
what a browser's text area sends (CRLF line breaks) is recorded as it is."""

from __future__ import annotations

from tests.workspace.conftest import Desk
from tests.workspace.test_workspace import _table_data, recorded


def test_forms_refuse_control_characters_and_non_slug_ids_and_keep_crlf(desk: Desk) -> None:
    csrf = desk.sign_in("recorder")
    before = desk.size()
    refused = desk.post(
        "register-organisation",
        {"csrf": csrf, "name": "Bell\x07 and \x1b[2J Co", "org_kind": "civil_society"},
    )
    assert refused.status_code == 422
    assert "name contains a control character (U+0007)" in refused.text
    process = desk.sample.process_id
    refused = desk.post(
        "add-strand",
        {"csrf": csrf, "record": process, "strand_id": "Health/Care", "title": "Health"},
    )
    assert refused.status_code == 422, refused.text[-2000:]
    assert "strand_id must be a slug" in refused.text
    assert desk.size() == before

    data = _table_data(desk, csrf)
    data["sections-0-text"] = "First line.\r\nSecond line.\r\n\tIndented."
    found = recorded(desk, desk.post("table-proposal", data), "proposal.tabled")
    assert found["data"]["sections"][0]["text"] == "First line.\r\nSecond line.\r\n\tIndented."
