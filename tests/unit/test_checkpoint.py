"""Tests for ledger.checkpoint: checkpoints, signed notes, keys and cosignatures.

Known answers come from outside this project: the signed note of Go's
golang.org/x/mod/sumdb/note documentation (key "PeterNeumann"), and a real checkpoint of
the Certificate Transparency staging log arche2025h1 cosigned by four public witnesses.
The auditor's independent implementation (ledger.audit.note) must agree on all of them.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import ledger.checkpoint as cp_module
from ledger.audit import note as audit_note
from ledger.audit.errors import NoteError
from ledger.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    CosignatureSigner,
    CosignatureVerifier,
    Ed25519Signer,
    Ed25519Verifier,
    NoteSignature,
    add_signatures,
    check_key_name,
    cosignature_message,
    key_id,
    parse_note,
    sign_note,
    verify_cosignatures,
    verify_note,
)
from ledger.errors import InvalidInputError

LOG_NAME = "example.gov.uk/open-policy"
ROOT = hashlib.sha256(b"a root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()

# golang.org/x/mod/sumdb/note (package documentation and note_test.go).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT.decode()
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
    "vqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# transparency-dev/formats note tests: a type 0x01 key whose base64 contains '+'.
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"

# A real checkpoint of the CT staging log arche2025h1, with an RFC 6962 (type 0x05) and an
# Ed25519 log signature and four witness cosignatures (cosignature/v1).
CT_NOTE = (
    "arche2025h1.staging.ct.transparency.dev\n"
    "1432088532\n"
    "U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
    "\n"
    "\u2014 arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX"
    "6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n"
    "\u2014 arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefw"
    "hUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    "\u2014 transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/"
    "KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==\n"
    "\u2014 witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH"
    "+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==\n"
    "\u2014 remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVC"
    "IobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==\n"
    "\u2014 witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUv"
    "Vr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==\n"
)
CT_LOG_VKEY = (
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
)
CT_WITNESS_VKEYS = [
    "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
    "transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM",
    "witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO",
]
CT_COSIGNED_AT = 1779573024


def seeded_signer(label: str, name: str = LOG_NAME) -> Ed25519Signer:
    """A deterministic log signer, so failures reproduce."""
    return Ed25519Signer.from_private_bytes(name, hashlib.sha256(label.encode()).digest())


def seeded_witness(label: str, now: int = 1_700_000_000) -> CosignatureSigner:
    """A deterministic witness whose clock is fixed at ``now``."""
    seed = hashlib.sha256(label.encode()).digest()
    return CosignatureSigner.from_private_bytes(f"witness.example/{label}", seed, lambda: now)


def body_for(size: int = 5, root: bytes = ROOT) -> bytes:
    """The checkpoint body of the example log at ``size``."""
    return Checkpoint(LOG_NAME, size, root).body()


# --------------------------------------------------------------------------------------
# Checkpoint body
# --------------------------------------------------------------------------------------

note_text = st.text(alphabet=st.characters(min_codepoint=0x20, codec="utf-8"), min_size=1)


@settings(max_examples=200)
@given(
    origin=note_text,
    size=st.integers(min_value=0, max_value=2**63 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(note_text, max_size=3),
)
def test_checkpoint_body_round_trip(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    """Any valid checkpoint parses back from its body, identically in both implementations."""
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    body = checkpoint.body()
    assert Checkpoint.parse(body) == checkpoint
    audited = audit_note.parse_checkpoint(body)
    assert (audited.origin, audited.size, audited.root, audited.extensions) == (
        origin,
        size,
        root,
        tuple(extensions),
    )


def test_checkpoint_body_is_exactly_three_lines() -> None:
    """The body is origin, decimal size and padded standard base64 root, each with a newline."""
    assert Checkpoint(LOG_NAME, 20852163, ROOT).body() == (
        f"{LOG_NAME}\n20852163\n{ROOT_B64}\n".encode()
    )
    assert Checkpoint("o", 0, ROOT, ("ext",)).body() == f"o\n0\n{ROOT_B64}\next\n".encode()


SHORT_ROOT = base64.b64encode(bytes(31)).decode()
BAD_BODIES = [
    (f"o\n01\n{ROOT_B64}\n", "without leading zeros"),
    (f"o\n-1\n{ROOT_B64}\n", "without leading zeros"),
    (f"o\n+1\n{ROOT_B64}\n", "without leading zeros"),
    (f"o\n1 \n{ROOT_B64}\n", "without leading zeros"),
    (f"o\n\uff11\n{ROOT_B64}\n", "without leading zeros"),
    (f"o\n{2**63}\n{ROOT_B64}\n", "larger than 2^63-1"),
    ("o\n1\n!!!!\n", "base64"),
    (f"o\n1\n{ROOT_B64.rstrip('=')}\n", "base64"),
    (f"o\n1\n{ROOT_B64[:-2]}B=\n", "canonical"),
    (f"o\n1\n{SHORT_ROOT}\n", "32 bytes"),
    (f"o\n1\n{ROOT_B64}", "end with a newline"),
    (f"o\n1\n{ROOT_B64}\n\n", "line 4 is empty"),
    (f"o\n\n1\n{ROOT_B64}\n", "line 2 is empty"),
    (f"\n1\n{ROOT_B64}\n", "line 1 is empty"),
    ("o\n1\n", "origin, size and root"),
    (f"o\r\n1\n{ROOT_B64}\n", "control character"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_checkpoint_parse_rejects_malformed_bodies(body: str, message: str) -> None:
    """Each malformed body is refused with a message naming the problem, by both parsers."""
    with pytest.raises(CheckpointError, match=re.escape(message)):
        Checkpoint.parse(body.encode())
    with pytest.raises(NoteError):
        audit_note.parse_checkpoint(body.encode())


def test_checkpoint_parse_rejects_invalid_utf8() -> None:
    """A body that is not UTF-8 is refused by both parsers."""
    body = b"\xff\n1\n" + ROOT_B64.encode() + b"\n"
    with pytest.raises(CheckpointError, match="UTF-8"):
        Checkpoint.parse(body)
    with pytest.raises(NoteError, match="UTF-8"):
        audit_note.parse_checkpoint(body)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"origin": ""}, "non-empty"),
        ({"origin": "a\nb"}, "newline"),
        ({"origin": "a\tb"}, "control character"),
        ({"size": -1}, "outside"),
        ({"size": 2**63}, "outside"),
        ({"size": True}, "integer"),
        ({"root": bytes(31)}, "32 bytes"),
        ({"extensions": ("",)}, "non-empty"),
        ({"extensions": ("a\nb",)}, "newline"),
    ],
)
def test_checkpoint_constructor_refuses_values_without_a_body(
    kwargs: dict[str, object], message: str
) -> None:
    """A Checkpoint that could not be written as a valid body cannot be built."""
    fields: dict[str, object] = {"origin": "o", "size": 1, "root": ROOT} | kwargs
    with pytest.raises(CheckpointError, match=message):
        Checkpoint(**fields)  # type: ignore[arg-type]


def test_checkpoint_error_is_invalid_input() -> None:
    """CheckpointError sits under the ledger's InvalidInputError (and ValueError)."""
    assert issubclass(CheckpointError, InvalidInputError)
    assert issubclass(CheckpointError, ValueError)


def test_module_all_is_complete() -> None:
    """Every public top-level name defined in ledger.checkpoint is listed in __all__."""
    tree = ast.parse(Path(cp_module.__file__ or "").read_text(encoding="utf-8"))
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
    public = {name for name in defined if not name.startswith("_")} - {"__all__"}
    assert public == set(cp_module.__all__)


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------


def test_key_id_known_answer_computed_independently() -> None:
    """The key id is SHA-256(name || 0x0A || type || key)[:4], here spelled out by hand."""
    signer = seeded_signer("log")
    expected = hashlib.sha256(LOG_NAME.encode() + bytes([0x0A, 0x01]) + signer.public_key).digest()[
        :4
    ]
    assert signer.key_id == expected
    assert key_id(LOG_NAME, 0x01, signer.public_key) == expected
    assert audit_note.key_id(LOG_NAME, 0x01, signer.public_key) == expected
    raw_public = base64.b64decode(GO_VKEY.split("+", 2)[2])[1:]
    assert key_id("PeterNeumann", 0x01, raw_public).hex() == "c74f20a3"


def test_verifier_key_format_and_round_trip() -> None:
    """The vkey is name+hex id+base64(0x01 || key) and parses back to the same key."""
    signer = seeded_signer("log")
    vkey = signer.verifier_key()
    name, hex_id, material = vkey.split("+", 2)
    assert (name, hex_id) == (LOG_NAME, signer.key_id.hex())
    assert base64.b64decode(material) == b"\x01" + signer.public_key
    verifier = Ed25519Verifier.from_vkey(vkey)
    assert (verifier.name, verifier.key_id, verifier.public_key) == (
        LOG_NAME,
        signer.key_id,
        signer.public_key,
    )
    assert verifier.verifier_key() == vkey
    audited = audit_note.parse_vkey(vkey)
    assert (audited.name, audited.key_id, audited.public_key) == (
        LOG_NAME,
        signer.key_id,
        signer.public_key,
    )


def test_verifier_key_whose_base64_contains_plus() -> None:
    """A vkey whose base64 contains '+' parses in both implementations and round-trips."""
    assert Ed25519Verifier.from_vkey(PLUS_VKEY).verifier_key() == PLUS_VKEY
    assert Ed25519Verifier.from_vkey(GO_VKEY).verifier_key() == GO_VKEY
    assert audit_note.parse_vkey(PLUS_VKEY).name == "TEST"


def _retyped(vkey: str, key_type: int) -> str:
    name, hex_id, material = vkey.split("+", 2)
    raw = bytes([key_type]) + base64.b64decode(material)[1:]
    return f"{name}+{hex_id}+{base64.b64encode(raw).decode()}"


GOOD_VKEY = seeded_signer("log").verifier_key()
BAD_VKEYS = [
    ("", "'+'-separated parts"),
    (GOOD_VKEY.replace("+", "", 1), "'+'-separated parts"),
    ("+" + GOOD_VKEY.split("+", 1)[1], "non-empty"),
    ("a b+" + GOOD_VKEY.split("+", 1)[1], "white space"),
    (GOOD_VKEY.replace(GOOD_VKEY.split("+")[1], GOOD_VKEY.split("+")[1].upper()), "lowercase"),
    (GOOD_VKEY.replace(GOOD_VKEY.split("+")[1], "0000000"), "8 lowercase hex"),
    (GOOD_VKEY.replace(GOOD_VKEY.split("+")[1], "00000000"), "does not match"),
    (GOOD_VKEY[:-1], "base64"),
    (GOOD_VKEY[:-4], "got 30 bytes"),
    (GOOD_VKEY + "AAAA", "Ed25519 key, got"),
    (_retyped(GOOD_VKEY, 0x04), "signature type 0x04"),
    (GOOD_VKEY + "\n", "base64"),
]


@pytest.mark.parametrize(("vkey", "message"), BAD_VKEYS)
def test_verifier_key_parse_is_strict(vkey: str, message: str) -> None:
    """Malformed verifier keys are refused with a clear message, and by the auditor too."""
    with pytest.raises(CheckpointError, match=re.escape(message)):
        Ed25519Verifier.from_vkey(vkey)
    with pytest.raises(NoteError):
        audit_note.parse_vkey(vkey)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\x00b"])
def test_key_names_follow_signed_note(name: str) -> None:
    """Key names are non-empty with no Unicode space, no '+' and no control character."""
    with pytest.raises(CheckpointError):
        check_key_name(name)
    with pytest.raises(CheckpointError):
        Ed25519Signer.from_private_bytes(name, bytes(32))


def test_private_key_formats_round_trip() -> None:
    """PEM (PKCS#8), raw seed and the Go signer-key string all give back the same key."""
    signer = Ed25519Signer.generate(LOG_NAME)
    pem = signer.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    for copy in (
        Ed25519Signer.from_pem(LOG_NAME, pem),
        Ed25519Signer.from_private_bytes(LOG_NAME, signer.private_bytes()),
        Ed25519Signer.from_skey(signer.to_skey()),
    ):
        assert copy.public_key == signer.public_key
        assert copy.verifier_key() == signer.verifier_key()
    assert Ed25519Signer.from_skey(GO_SKEY).verifier_key() == GO_VKEY
    assert signer.private_bytes().hex() not in repr(signer)


def test_private_key_loading_refuses_other_keys() -> None:
    """Non-Ed25519 PEM, encrypted PEM, a bad seed length or a wrong skey id are refused."""
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CheckpointError, match="not an Ed25519 key"):
        Ed25519Signer.from_pem(LOG_NAME, ec_pem)
    encrypted = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(CheckpointError, match="unencrypted"):
        Ed25519Signer.from_pem(LOG_NAME, encrypted)
    with pytest.raises(CheckpointError, match="32 bytes"):
        Ed25519Signer.from_private_bytes(LOG_NAME, bytes(31))
    with pytest.raises(CheckpointError, match="does not match"):
        Ed25519Signer.from_skey(GO_SKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(CheckpointError, match="type byte 0x04"):
        CosignatureSigner.from_skey(GO_SKEY)


# --------------------------------------------------------------------------------------
# Signed notes
# --------------------------------------------------------------------------------------


def test_go_known_answer_note_is_reproduced_byte_for_byte() -> None:
    """Signing Go's example text with Go's example key gives Go's published note exactly."""
    signer = Ed25519Signer.from_skey(GO_SKEY)
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE
    verifier = Ed25519Verifier.from_vkey(GO_VKEY)
    body, signatures = parse_note(GO_NOTE)
    assert body == GO_TEXT
    assert verifier.verify(body, signatures[0].signature)
    # Not a checkpoint, so verify_note refuses it after the signature checks out.
    with pytest.raises(CheckpointError, match="size"):
        verify_note(GO_NOTE, verifier)


def test_real_ct_checkpoint_verifies_in_both_implementations() -> None:
    """A real CT log checkpoint with four witness cosignatures verifies in both verifiers."""
    checkpoint = verify_note(CT_NOTE, Ed25519Verifier.from_vkey(CT_LOG_VKEY))
    assert (checkpoint.origin, checkpoint.size) == (
        "arche2025h1.staging.ct.transparency.dev",
        1432088532,
    )
    witnesses = [CosignatureVerifier.from_vkey(v) for v in CT_WITNESS_VKEYS]
    assert verify_cosignatures(CT_NOTE, witnesses, 4) == {w.name: CT_COSIGNED_AT for w in witnesses}
    audited = audit_note.verify_checkpoint(CT_NOTE, audit_note.parse_vkey(CT_LOG_VKEY))
    assert (audited.origin, audited.size, audited.root) == (
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root,
    )
    audit_witnesses = [audit_note.parse_vkey(v, 0x04) for v in CT_WITNESS_VKEYS]
    assert audit_note.verify_cosignatures(CT_NOTE, audit_witnesses, 4) == {
        w.name: CT_COSIGNED_AT for w in witnesses
    }
    clobbered = CT_NOTE.replace("1432088532", "1432088533")
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(clobbered, Ed25519Verifier.from_vkey(CT_LOG_VKEY))
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignatures(clobbered, witnesses, 1)
    with pytest.raises(NoteError, match="does not verify"):
        audit_note.verify_checkpoint(clobbered, audit_note.parse_vkey(CT_LOG_VKEY))


def test_signed_note_round_trip() -> None:
    """A note signed by the log verifies and yields the checkpoint it was made from."""
    signer = seeded_signer("log")
    checkpoint = Checkpoint(LOG_NAME, 5, ROOT)
    note = sign_note(checkpoint.body(), [signer])
    assert note.startswith(checkpoint.body().decode() + "\n\u2014 " + LOG_NAME + " ")
    assert note.endswith("\n")
    assert verify_note(note, signer.verifier()) == checkpoint
    assert verify_note(note.encode(), signer.verifier()) == checkpoint
    body, signatures = parse_note(note)
    assert body == checkpoint.body()
    assert signatures == [NoteSignature(LOG_NAME, signer.key_id, signer.sign(checkpoint.body()))]


def test_note_signed_by_another_key_is_rejected() -> None:
    """A note signed by a different key under the same name has no signature we trust."""
    note = sign_note(body_for(), [seeded_signer("impostor")])
    with pytest.raises(CheckpointError, match="no signature by the key"):
        verify_note(note, seeded_signer("log").verifier())


def test_note_with_a_wrong_key_id_is_rejected() -> None:
    """Changing the key id in the line makes it someone else's signature: none of ours."""
    signer = seeded_signer("log")
    body = body_for()
    forged = NoteSignature(LOG_NAME, b"\x00\x00\x00\x00", signer.sign(body))
    note = body.decode() + "\n" + forged.line() + "\n"
    with pytest.raises(CheckpointError, match="no signature by the key"):
        verify_note(note, signer.verifier())


def test_note_with_a_bad_signature_from_the_known_key_is_rejected() -> None:
    """A line with the right name and key id but a wrong signature rejects the whole note."""
    signer = seeded_signer("log")
    body = body_for()
    bad = NoteSignature(LOG_NAME, signer.key_id, seeded_signer("other").sign(body))
    good_line = sign_note(body, [signer]).split("\n\n", 1)[1]
    note = body.decode() + "\n" + good_line + bad.line() + "\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(note, signer.verifier())
    with pytest.raises(NoteError, match="does not verify"):
        audit_note.verify_checkpoint(note, audit_note.parse_vkey(signer.verifier_key()))


def test_note_with_a_changed_body_is_rejected() -> None:
    """Any change to the signed text breaks the signature."""
    signer = seeded_signer("log")
    note = sign_note(body_for(5), [signer])
    changed = note.replace("\n5\n", "\n6\n", 1)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(changed, signer.verifier())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda n: n.replace("\u2014 ", "- "), "em dash"),
        (lambda n: n.replace("\u2014 ", "\u2013 "), "em dash"),
        (lambda n: n.replace("\u2014 ", "\u2014"), "em dash"),
        (lambda n: n.replace("\u2014 ", "\u2014  "), "non-empty"),
        (lambda n: n[:-3] + "!=\n", "base64"),
        (lambda n: n[:-2] + "\n", "base64"),
        (lambda n: n[:-1], "end with a newline"),
        (lambda n: n.replace("\n\n", "\n"), "no blank line"),
        (lambda n: n.replace("\n\n", "\n\n\n"), "exactly one blank line"),
        (lambda n: n + "\n", "no signature lines"),
        (lambda n: n.replace("\n\u2014", "\n\u2014 x\n\u2014", 1), "no space"),
        (lambda n: n.replace("\n", "\r\n"), "control character"),
    ],
)
def test_parse_note_rejects_malformed_signature_blocks(mutate: object, message: str) -> None:
    """Bad dashes, bad base64 and bad framing are refused by both note parsers."""
    note = sign_note(body_for(), [seeded_signer("log")])
    bad = mutate(note)  # type: ignore[operator]
    with pytest.raises(CheckpointError, match=re.escape(message)):
        parse_note(bad)
    with pytest.raises(NoteError):
        audit_note.parse_note(bad)


def test_parse_note_limits_signature_lines_to_100() -> None:
    """100 signature lines are accepted and 101 refused, by both parsers."""
    body = body_for()
    line = NoteSignature("w", b"\x01\x02\x03\x04", bytes(64)).line() + "\n"
    assert len(parse_note(body.decode() + "\n" + line * MAX_SIGNATURES)[1]) == 100
    assert len(audit_note.parse_note(body.decode() + "\n" + line * 100)[1]) == 100
    with pytest.raises(CheckpointError, match="at most 100"):
        parse_note(body.decode() + "\n" + line * 101)
    with pytest.raises(NoteError, match="more than 100"):
        audit_note.parse_note(body.decode() + "\n" + line * 101)


def test_unknown_signatures_are_ignored() -> None:
    """Lines from other keys, even sharing our name or our key id, do not affect the result."""
    signer = seeded_signer("log")
    body = body_for()
    same_name = NoteSignature(LOG_NAME, b"\xde\xad\xbe\xef", bytes(64))
    same_id = NoteSignature("other.example/log", signer.key_id, bytes(64))
    stranger = NoteSignature("stranger", b"\x00\x00\x00\x01", b"\x05" * 100)
    ours = sign_note(body, [signer]).split("\n\n", 1)[1]
    note = (
        body.decode()
        + "\n"
        + "".join(s.line() + "\n" for s in (same_name, same_id))
        + ours
        + stranger.line()
        + "\n"
    )
    assert verify_note(note, signer.verifier()).size == 5
    key = audit_note.parse_vkey(signer.verifier_key())
    assert audit_note.verify_checkpoint(note, key).size == 5


def test_sign_note_refuses_bad_bodies_and_no_signers() -> None:
    """sign_note needs a body ending in exactly one newline and at least one signer."""
    signer = seeded_signer("log")
    with pytest.raises(CheckpointError, match="exactly one newline"):
        sign_note(b"o\n1\nroot", [signer])
    with pytest.raises(CheckpointError, match="exactly one newline"):
        sign_note(b"o\n1\nroot\n\n", [signer])
    with pytest.raises(CheckpointError, match="at least one signer"):
        sign_note(body_for(), [])
    with pytest.raises(CheckpointError, match="control character"):
        sign_note(b"o\t\n", [signer])


def _independent_note(body: bytes, seed: bytes, name: str) -> tuple[str, str]:
    """Sign ``body`` with raw cryptography calls, following the spec text only."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    kid = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    line = "\u2014 " + name + " " + base64.b64encode(kid + key.sign(body)).decode()
    material = base64.b64encode(b"\x01" + public).decode()
    vkey = f"{name}+{kid.hex()}+{material}"
    return body.decode() + "\n" + line + "\n", vkey


@settings(max_examples=50)
@given(
    size=st.integers(min_value=0, max_value=2**40),
    root=st.binary(min_size=32, max_size=32),
    seed=st.binary(min_size=32, max_size=32),
)
def test_both_implementations_agree_on_signed_checkpoints(
    size: int, root: bytes, seed: bytes
) -> None:
    """Notes from ledger.checkpoint verify in ledger.audit and an independent note in both."""
    body = Checkpoint(LOG_NAME, size, root).body()
    signer = Ed25519Signer.from_private_bytes(LOG_NAME, seed)
    ours = sign_note(body, [signer])
    audited = audit_note.verify_checkpoint(ours, audit_note.parse_vkey(signer.verifier_key()))
    assert (audited.size, audited.root) == (size, root)
    theirs, vkey = _independent_note(body, seed, LOG_NAME)
    assert theirs == ours
    assert vkey == signer.verifier_key()
    assert verify_note(theirs, Ed25519Verifier.from_vkey(vkey)).root == root
    assert audit_note.verify_checkpoint(theirs, audit_note.parse_vkey(vkey)).root == root


@settings(max_examples=300)
@given(
    st.text(
        alphabet=st.sampled_from(["\n", "\u2014", " ", "+", "A", "=", "x", "/", "\u2013", "0"]),
        max_size=60,
    )
)
def test_both_note_parsers_accept_and_reject_the_same_texts(text: str) -> None:
    """On arbitrary short texts the two note parsers agree, and give the same result."""
    try:
        ours: tuple[bytes, list[tuple[str, bytes, bytes]]] | None = (
            parse_note(text)[0],
            [(s.name, s.key_id, s.signature) for s in parse_note(text)[1]],
        )
    except CheckpointError:
        ours = None
    try:
        body, sigs = audit_note.parse_note(text)
        theirs: tuple[bytes, list[tuple[str, bytes, bytes]]] | None = (
            body,
            [(s.name, s.key_id, s.signature) for s in sigs],
        )
    except NoteError:
        theirs = None
    assert ours == theirs


# --------------------------------------------------------------------------------------
# Cosignatures
# --------------------------------------------------------------------------------------


def test_cosignature_round_trip_and_wire_format() -> None:
    """A cosignature is the 8-byte timestamp then Ed25519 over the cosignature/v1 message."""
    witness = seeded_witness("w1")
    body = body_for()
    signature = witness.cosign(body, 1_700_000_000)
    assert signature[:8] == (1_700_000_000).to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1700000000\n" + body
    assert cosignature_message(body, 1_700_000_000) == message
    Ed25519PublicKey.from_public_bytes(witness.public_key).verify(signature[8:], message)
    verifier = CosignatureVerifier.from_vkey(witness.verifier_key())
    assert verifier.verify_cosignature(body, signature) == 1_700_000_000
    assert verifier.verify(body, signature)
    assert not verifier.verify(body_for(6), signature)
    assert (
        witness.key_id
        == hashlib.sha256(witness.name.encode() + b"\n\x04" + witness.public_key).digest()[:4]
    )
    assert base64.b64decode(witness.verifier_key().split("+", 2)[2])[0] == 0x04
    with pytest.raises(CheckpointError, match="signature type 0x01"):
        CosignatureVerifier.from_vkey(seeded_signer("log").verifier_key())


def test_cosigner_only_signs_checkpoints_with_valid_timestamps() -> None:
    """A cosigner refuses a body that is not a checkpoint and timestamps outside 0..2^63-1."""
    witness = seeded_witness("w1")
    with pytest.raises(CheckpointError):
        witness.cosign(GO_TEXT, 1)
    with pytest.raises(CheckpointError, match="outside"):
        witness.cosign(body_for(), -1)
    with pytest.raises(CheckpointError, match="outside"):
        witness.cosign(body_for(), 2**63)


def test_cosignatures_reach_a_k_of_n_quorum() -> None:
    """With three witnesses and two cosignatures, quorum 2 passes and quorum 3 fails."""
    log = seeded_signer("log")
    w1, w2, w3 = seeded_witness("w1", 100), seeded_witness("w2", 200), seeded_witness("w3")
    note = sign_note(body_for(), [log, w1, w2])
    verifiers = [w.verifier() for w in (w1, w2, w3)]
    assert verify_cosignatures(note, verifiers, 2) == {w1.name: 100, w2.name: 200}
    assert verify_cosignatures(note, verifiers, 0) == {w1.name: 100, w2.name: 200}
    with pytest.raises(CheckpointError, match="only 2 of the required 3"):
        verify_cosignatures(note, verifiers, 3)
    with pytest.raises(CheckpointError, match="larger than"):
        verify_cosignatures(note, verifiers, 4)
    assert verify_note(note, log.verifier()).size == 5
    audit_keys = [audit_note.parse_vkey(w.verifier_key(), 0x04) for w in (w1, w2, w3)]
    assert audit_note.verify_cosignatures(note, audit_keys, 2) == {w1.name: 100, w2.name: 200}
    with pytest.raises(NoteError, match="fewer than the quorum of 3"):
        audit_note.verify_cosignatures(note, audit_keys, 3)


def test_a_bad_cosignature_from_a_known_witness_rejects_the_note() -> None:
    """A known witness's cosignature over another checkpoint makes verification fail."""
    w1 = seeded_witness("w1")
    note = sign_note(body_for(5), [seeded_signer("log")])
    stale = NoteSignature(w1.name, w1.key_id, w1.cosign(body_for(4), 1)).line()
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignatures(add_signatures(note, [stale]), [w1.verifier()], 1)


def test_add_signatures_appends_and_replaces_witness_lines() -> None:
    """Witness lines are appended; a newer line from the same key replaces the older one."""
    log = seeded_signer("log")
    w1 = seeded_witness("w1")
    body = body_for()
    note = sign_note(body, [log])
    first = NoteSignature(w1.name, w1.key_id, w1.cosign(body, 10)).line()
    second = NoteSignature(w1.name, w1.key_id, w1.cosign(body, 20)).line() + "\n"
    once = add_signatures(note, [first])
    assert once == note + first + "\n"
    assert verify_cosignatures(once, [w1.verifier()], 1) == {w1.name: 10}
    twice = add_signatures(once, [second])
    assert twice == note + second
    assert verify_cosignatures(twice, [w1.verifier()], 1) == {w1.name: 20}
    assert add_signatures(once, [first]) == once
    with pytest.raises(CheckpointError, match="em dash"):
        add_signatures(note, ["- " + first[2:]])
    with pytest.raises(CheckpointError, match="more than one line"):
        add_signatures(note, [first + "\n" + first])
