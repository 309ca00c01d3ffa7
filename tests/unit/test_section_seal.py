"""Sealing a section for its permitted recipients and opening it: every refusal has its reason."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record, encode_record
from border_exchange.domain.section_seal import (
    GROUP_WRAP_TAG,
    SEALED_SCHEMA,
    WRAP_TAG,
    Recipient,
    RecipientPrivateKey,
    SectionContext,
    SectionOpener,
    associated_data,
    commitment,
    is_sealed,
    open_section,
    recipients_of,
    seal_section,
    seal_sections,
    section_key_of,
    wrap_info,
)
from border_exchange.domain.trust import EncryptionAlgorithm, EncryptionKey
from border_exchange.errors import SectionError, SectionProblem

NOW = datetime.now(UTC)
CONTEXT = SectionContext("COD", AlertType.WANTED_PERSON, "alert-1", 2, "msg-1", "identity")
PLAINTEXT = os.urandom(40) + b"Mukendi Kabeya Jean-Pierre"


def _x25519(owner: str, key_id: str) -> tuple[EncryptionKey, RecipientPrivateKey]:
    private = X25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    public = EncryptionKey(
        owner, key_id, EncryptionAlgorithm.X25519, raw, NOW - timedelta(days=1),
        NOW + timedelta(days=1),
    )  # fmt: skip
    return public, RecipientPrivateKey(key_id, EncryptionAlgorithm.X25519, private)


def _hybrid(owner: str, key_id: str) -> tuple[EncryptionKey, RecipientPrivateKey]:
    mlkem, x25519 = MLKEM768PrivateKey.generate(), X25519PrivateKey.generate()
    raw = mlkem.public_key().public_bytes_raw() + x25519.public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )
    algorithm = EncryptionAlgorithm.MLKEM768_X25519
    public = EncryptionKey(
        owner, key_id, algorithm, raw, NOW - timedelta(days=1), NOW + timedelta(days=1)
    )
    private = hpke.MLKEM768X25519PrivateKey(mlkem, x25519)
    return public, RecipientPrivateKey(key_id, algorithm, private)


CAF, CAF_PRIVATE = _x25519("CAF", "CAF-enc-1")
SSD, SSD_PRIVATE = _x25519("SSD", "SSD-enc-1")
MONUSCA, MONUSCA_PRIVATE = _hybrid("UN-MONUSCA", "MONUSCA-enc-1")
SEALED = seal_section(
    CONTEXT,
    PLAINTEXT,
    [Recipient(CAF, "COD-CAF-2026"), Recipient(MONUSCA, "COD-MONUSCA-2026")],
)


def _refused(
    sealed: bytes,
    keys: Sequence[RecipientPrivateKey],
    participant: str = "CAF",
    *,
    context: SectionContext = CONTEXT,
    others: dict[str, bytes | None] | None = None,
) -> str:
    with pytest.raises(SectionError) as caught:
        open_section(context, sealed, participant, keys, others=others)
    return caught.value.reason


def _edited(sealed: bytes, **changes: object) -> bytes:
    name, record = decode_record(sealed)
    assert name == SEALED_SCHEMA
    return encode_record(SEALED_SCHEMA, {**record, **changes})


def test_every_permitted_recipient_opens_the_same_plaintext() -> None:
    caf = open_section(CONTEXT, SEALED, "CAF", [CAF_PRIVATE])
    monusca = open_section(CONTEXT, SEALED, "UN-MONUSCA", [MONUSCA_PRIVATE])
    assert caf.plaintext == monusca.plaintext == PLAINTEXT
    assert caf.section_key == monusca.section_key
    assert (caf.key_id, monusca.key_id) == ("CAF-enc-1", "MONUSCA-enc-1")


def test_the_sealed_record_shows_the_recipients_but_not_the_plaintext() -> None:
    assert is_sealed(SEALED)
    assert not is_sealed(PLAINTEXT)
    assert recipients_of(SEALED) == (("CAF", "CAF-enc-1"), ("UN-MONUSCA", "MONUSCA-enc-1"))
    assert b"Mukendi" not in SEALED
    assert PLAINTEXT[:40] not in SEALED


def test_a_participant_without_a_wrapped_key_cannot_open_even_with_its_own_key() -> None:
    assert _refused(SEALED, [SSD_PRIVATE], "SSD") == SectionProblem.NO_WRAPPED_KEY
    # Its key against another recipient's wrap does not open it either.
    assert _refused(SEALED, [_x25519("CAF", "CAF-enc-1")[1]]) == SectionProblem.WRAPPED_KEY_INVALID


def test_a_wrap_to_a_key_the_post_does_not_hold_is_refused_naming_it() -> None:
    with pytest.raises(SectionError, match="CAF-enc-1") as caught:
        open_section(CONTEXT, SEALED, "CAF", [_x25519("CAF", "CAF-enc-2")[1]])
    assert caught.value.reason is SectionProblem.UNKNOWN_KEY


def test_a_retired_key_still_opens_what_was_wrapped_to_it() -> None:
    new_public, new_private = _x25519("CAF", "CAF-enc-2")
    rotated = seal_section(CONTEXT, PLAINTEXT, [Recipient(new_public, "COD-CAF-2026")])
    both = [new_private, CAF_PRIVATE]
    assert open_section(CONTEXT, SEALED, "CAF", both).key_id == "CAF-enc-1"
    assert open_section(CONTEXT, rotated, "CAF", both).key_id == "CAF-enc-2"
    assert _refused(rotated, [CAF_PRIVATE]) == SectionProblem.UNKNOWN_KEY


def test_a_tampered_ciphertext_is_refused() -> None:
    _, record = decode_record(SEALED)
    flipped = bytearray(record["ciphertext"])
    flipped[5] ^= 1
    assert _refused(_edited(SEALED, ciphertext=bytes(flipped)), [CAF_PRIVATE]) == (
        SectionProblem.CIPHERTEXT_INVALID
    )


def test_a_truncated_or_foreign_record_is_malformed() -> None:
    assert _refused(SEALED[:-7], [CAF_PRIVATE]) == SectionProblem.MALFORMED
    assert _refused(b"\xc3\x01" + bytes(30), [CAF_PRIVATE]) == SectionProblem.MALFORMED
    assert _refused(PLAINTEXT, [CAF_PRIVATE]) == SectionProblem.MALFORMED


def test_a_wrapped_key_swapped_between_recipients_is_refused() -> None:
    """CAF's entry given the key wrapped for SSD (both X25519): it opens for no one."""
    both = seal_section(
        CONTEXT, PLAINTEXT, [Recipient(CAF, "COD-CAF-2026"), Recipient(SSD, "COD-SSD-2026")]
    )
    _, record = decode_record(both)
    caf, ssd = record["recipients"]
    swapped = _edited(
        both,
        recipients=[{**caf, "wrapped": ssd["wrapped"]}, {**ssd, "wrapped": caf["wrapped"]}],
    )
    assert _refused(swapped, [CAF_PRIVATE]) == SectionProblem.WRAPPED_KEY_INVALID
    assert _refused(swapped, [SSD_PRIVATE], "SSD") == SectionProblem.WRAPPED_KEY_INVALID
    # The wrap binds its agreement too: naming another agreement breaks it.
    renamed = _edited(both, recipients=[{**caf, "agreement_id": "COD-CAF-OLD"}, ssd])
    assert _refused(renamed, [CAF_PRIVATE]) == SectionProblem.WRAPPED_KEY_INVALID


@pytest.mark.parametrize(
    "elsewhere",
    [
        SectionContext("COD", AlertType.WANTED_PERSON, "alert-1", 3, "msg-1", "identity"),
        SectionContext("COD", AlertType.WANTED_PERSON, "alert-1", 2, "msg-1", "photo"),
        SectionContext("COD", AlertType.WANTED_PERSON, "alert-2", 2, "msg-1", "identity"),
        SectionContext("SSD", AlertType.WANTED_PERSON, "alert-1", 2, "msg-1", "identity"),
    ],
)
def test_a_section_read_in_another_context_is_refused(elsewhere: SectionContext) -> None:
    """Another version, section, alert or origin: the binding of the wrap no longer holds."""
    with pytest.raises(SectionError) as caught:
        open_section(elsewhere, SEALED, "CAF", [CAF_PRIVATE])
    assert caught.value.reason is SectionProblem.WRAPPED_KEY_INVALID


def test_a_ciphertext_moved_from_another_section_is_refused() -> None:
    """The wraps and commitment of this section with another section's ciphertext."""
    other = seal_section(CONTEXT, b"another plaintext", [Recipient(CAF, "COD-CAF-2026")])
    _, moved = decode_record(other)
    spliced = _edited(SEALED, nonce=moved["nonce"], ciphertext=moved["ciphertext"])
    assert _refused(spliced, [CAF_PRIVATE]) == SectionProblem.CIPHERTEXT_INVALID


def _forged(encrypted: bytes, *, grouped: bool) -> tuple[bytes, dict[str, object]]:
    """A record an origin built by hand: committed to PLAINTEXT, encrypting ``encrypted``.

    ``grouped``: the group format (the wrap holds a group key, the section key is derived
    from it); else the format of records written before groups (the wrap holds the key).
    """
    wrapped_key = os.urandom(32)
    key = section_key_of(wrapped_key, CONTEXT) if grouped else wrapped_key
    nonce = os.urandom(12)
    committed = commitment(CONTEXT, key, PLAINTEXT)
    ciphertext = ChaCha20Poly1305(key).encrypt(
        nonce, encrypted, associated_data(CONTEXT, committed)
    )
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    tag = GROUP_WRAP_TAG if grouped else WRAP_TAG
    info = wrap_info(CONTEXT, "CAF", CAF.key_id, "COD-CAF-2026", committed, tag=tag)
    caf_private = CAF_PRIVATE.private
    assert isinstance(caf_private, X25519PrivateKey)
    wrapped = suite.encrypt(wrapped_key, caf_private.public_key(), info=info)
    record: dict[str, object] = {
        "aead": "CHACHA20_POLY1305",
        "nonce": nonce,
        "ciphertext": ciphertext,
        "commitment": committed,
        "recipients": [
            {
                "participant": "CAF",
                "key_id": CAF.key_id,
                "kem": "X25519",
                "agreement_id": "COD-CAF-2026",
                "wrapped": wrapped,
            }
        ],
        "key_source": CONTEXT.name if grouped else None,
    }
    return encode_record(SEALED_SCHEMA, record), record


@pytest.mark.parametrize("grouped", [True, False], ids=["group-key", "before-groups"])
def test_a_key_that_decrypts_to_another_plaintext_than_committed_is_refused(
    grouped: bool,
) -> None:
    """An origin that commits to one plaintext and encrypts another under the wrapped key."""
    forged, _ = _forged(b"a different person", grouped=grouped)
    assert _refused(forged, [CAF_PRIVATE]) == SectionProblem.COMMITMENT_MISMATCH
    # The same construction with the committed plaintext opens: the test forges only that.
    honest, _ = _forged(PLAINTEXT, grouped=grouped)
    assert open_section(CONTEXT, honest, "CAF", [CAF_PRIVATE]).plaintext == PLAINTEXT


def test_a_record_from_before_groups_is_not_opened_as_a_group_and_back() -> None:
    """The wrap's ``info`` tag tells the two formats apart: a wrap of a section's own key
    presented as a group's (or the reverse) does not open."""
    _, record = _forged(PLAINTEXT, grouped=False)
    as_group = encode_record(SEALED_SCHEMA, {**record, "key_source": CONTEXT.name})
    assert _refused(as_group, [CAF_PRIVATE]) == SectionProblem.WRAPPED_KEY_INVALID
    _, record = _forged(PLAINTEXT, grouped=True)
    as_old = encode_record(SEALED_SCHEMA, {**record, "key_source": None})
    assert _refused(as_old, [CAF_PRIVATE]) == SectionProblem.WRAPPED_KEY_INVALID


PHOTO = replace(CONTEXT, name="photo")
REMARKS = replace(CONTEXT, name="remarks")
TO_CAF = (Recipient(CAF, "COD-CAF-2026"),)
TO_BOTH = (Recipient(CAF, "COD-CAF-2026"), Recipient(SSD, "COD-SSD-2026"))


def _message() -> dict[str, bytes]:
    """Three sections: identity and remarks for CAF and SSD (in either order), photo for CAF."""
    sealed = seal_sections(
        [
            (CONTEXT, b"identity record", TO_BOTH),
            (PHOTO, b"photo record", TO_CAF),
            (REMARKS, b"remarks record", TO_BOTH[::-1]),
        ]
    )
    return dict(zip(("identity", "photo", "remarks"), sealed, strict=True))


def test_sections_with_the_same_readers_share_one_set_of_wraps_in_their_first_section() -> None:
    message = _message()
    records = {name: decode_record(sealed)[1] for name, sealed in message.items()}
    assert {name: r["key_source"] for name, r in records.items()} == {
        "identity": "identity", "photo": "photo", "remarks": "identity",
    }  # fmt: skip
    assert [len(r["recipients"]) for r in records.values()] == [2, 1, 0]
    assert recipients_of(message["remarks"], message) == (
        ("CAF", "CAF-enc-1"),
        ("SSD", "SSD-enc-1"),
    )
    assert recipients_of(message["photo"], message) == (("CAF", "CAF-enc-1"),)
    ssd = SectionOpener("SSD", (SSD_PRIVATE,))
    assert ssd.open(REMARKS, message["remarks"], message).plaintext == b"remarks record"
    caf = SectionOpener("CAF", (CAF_PRIVATE,))
    opened = [caf.open(replace(CONTEXT, name=n), c, message) for n, c in message.items()]
    assert [o.plaintext for o in opened] == [b"identity record", b"photo record", b"remarks record"]
    assert len({o.section_key for o in opened}) == 3  # a key of its own for every section
    with pytest.raises(SectionError) as caught:
        ssd.open(PHOTO, message["photo"], message)
    assert caught.value.reason is SectionProblem.NO_WRAPPED_KEY


def test_a_section_whose_carrier_is_redacted_or_swapped_is_refused_with_a_reason() -> None:
    message = _message()
    without = {**message, "identity": None}
    with pytest.raises(SectionError) as caught:
        open_section(REMARKS, message["remarks"], "CAF", [CAF_PRIVATE], others=without)
    assert caught.value.reason is SectionProblem.NO_WRAPPED_KEY
    assert "wrapped in section identity, which this copy does not carry" in str(caught.value)
    # The carrier of another message (same names, same readers): its group key is not this
    # message's, so the derived key does not decrypt.
    moved: dict[str, bytes | None] = {**message, "identity": _message()["identity"]}
    refused = _refused(message["remarks"], [CAF_PRIVATE], context=REMARKS, others=moved)
    assert refused == SectionProblem.CIPHERTEXT_INVALID
    # A key source naming a section that carries another group's key.
    other_group: dict[str, bytes | None] = {**message, "identity": message["photo"]}
    refused = _refused(message["remarks"], [CAF_PRIVATE], context=REMARKS, others=other_group)
    assert refused == SectionProblem.MALFORMED


def test_each_seal_uses_a_fresh_key_and_nonce() -> None:
    again = seal_section(CONTEXT, PLAINTEXT, [Recipient(CAF, "COD-CAF-2026")])
    first = open_section(CONTEXT, SEALED, "CAF", [CAF_PRIVATE])
    second = open_section(CONTEXT, again, "CAF", [CAF_PRIVATE])
    assert first.section_key != second.section_key
    assert decode_record(SEALED)[1]["nonce"] != decode_record(again)[1]["nonce"]
