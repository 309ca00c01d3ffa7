"""An independent check of section sealing: a second HPKE (RFC 9180 base mode, written here
from the RFC with the standard library's HMAC, checked against the RFC's own test vector)
opens the wrapped key, HKDF written from RFC 5869 derives the section keys, and libsodium
(PyNaCl) decrypts the sections the origin sealed with
``cryptography``."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastavro import schemaless_writer
from fastavro.schema import parse_schema
from nacl.bindings import crypto_aead_chacha20poly1305_ietf_decrypt, crypto_scalarmult

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record
from border_exchange.domain.schemas import (
    HISTORY_DIR,
    SINGLE_OBJECT_MAGIC,
    default_schema_dir,
    schema_fingerprint,
)
from border_exchange.domain.section_seal import (
    WRAP_TAG,
    Recipient,
    RecipientPrivateKey,
    SectionContext,
    associated_data,
    commitment,
    is_sealed,
    open_section,
    seal_sections,
    wrap_info,
)
from border_exchange.domain.trust import EncryptionAlgorithm, EncryptionKey

H = bytes.fromhex
KEM_X25519, KDF_SHA256 = 0x0020, 0x0001
AEAD_AES128GCM, AEAD_CHACHA20POLY1305 = 0x0001, 0x0003


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite + label + ikm)


def _labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def hpke_base_schedule(sk_r: bytes, enc: bytes, info: bytes, aead: int) -> tuple[bytes, bytes]:
    """RFC 9180 §4.1 Decap of DHKEM(X25519, HKDF-SHA256) and §5.1 KeySchedule, mode base.

    The X25519 function is libsodium's; the rest is HMAC-SHA256 from the standard library.
    """
    kem_suite = b"KEM" + KEM_X25519.to_bytes(2, "big")
    dh = crypto_scalarmult(sk_r, enc)
    pk_r = (
        X25519PrivateKey.from_private_bytes(sk_r)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    eae_prk = _labeled_extract(kem_suite, b"", b"eae_prk", dh)
    shared = _labeled_expand(kem_suite, eae_prk, b"shared_secret", enc + pk_r, 32)
    suite = b"HPKE" + b"".join(i.to_bytes(2, "big") for i in (KEM_X25519, KDF_SHA256, aead))
    psk_id_hash = _labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(suite, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = _labeled_extract(suite, shared, b"secret", b"")
    key_size = 16 if aead == AEAD_AES128GCM else 32
    key = _labeled_expand(suite, secret, b"key", context, key_size)
    return key, _labeled_expand(suite, secret, b"base_nonce", context, 12)


def test_the_second_hpke_reproduces_the_rfc_9180_test_vector_a_1() -> None:
    """Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode."""
    sk_rm = H("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8")
    enc = H("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
    info = H("4f6465206f6e2061204772656369616e2055726e")
    key, base_nonce = hpke_base_schedule(sk_rm, enc, info, AEAD_AES128GCM)
    assert key.hex() == "4531685d41d65f03dc48f6b8302c05b0"
    assert base_nonce.hex() == "56d890e5accaaf011cff4b7d"
    ciphertext = H(
        "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"
    )
    plaintext = AESGCM(key).decrypt(base_nonce, ciphertext, H("436f756e742d30"))
    assert plaintext == b"Beauty is truth, truth beauty"


def _str(value: str) -> bytes:
    """The contract's ``str(x)``: 4-byte big-endian length, then UTF-8 (written here again)."""
    return len(value.encode()).to_bytes(4, "big") + value.encode()


def _context(origin: str, alert_id: str, version: int, message_id: str, name: str) -> bytes:
    """The contract's section context for a wanted person, framed by hand."""
    return (
        _str(origin) + _str("WANTED_PERSON") + _str(alert_id) + version.to_bytes(4, "big")
        + _str(message_id) + _str(name)
    )  # fmt: skip


def test_sections_sealed_by_the_origin_open_with_the_second_implementation() -> None:
    """The group key is unwrapped by the second HPKE from the wrap in the carrying section;
    each section's key is HKDF-SHA256 (RFC 5869, written above) of it over the section's
    context; libsodium decrypts both sections."""
    private = X25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    now = datetime.now(UTC)
    key = EncryptionKey(
        "CAF", "CAF-enc-1", EncryptionAlgorithm.X25519, raw, now, now + timedelta(days=1)
    )
    readers = (Recipient(key, "COD-CAF-2026"),)
    contexts = [
        SectionContext("COD", AlertType.WANTED_PERSON, "a-1", 1, "m-1", name)
        for name in ("identity", "remarks")
    ]
    plaintexts = [b"\xc3\x01 the identity section record", b"\xc3\x01 the remarks record"]
    sealed = seal_sections([(c, p, readers) for c, p in zip(contexts, plaintexts, strict=True)])
    records = [decode_record(s)[1] for s in sealed]
    assert [r["key_source"] for r in records] == ["identity", "identity"]
    assert records[1]["recipients"] == []
    carrier = records[0]
    wrap = carrier["recipients"][0]
    # HPKE single-shot Seal: enc (32 bytes for X25519) || Seal(key, base_nonce, aad="", pt).
    enc, wrapped = wrap["wrapped"][:32], wrap["wrapped"][32:]
    info = (
        b"border-exchange/group-key/v2\x00" + _context("COD", "a-1", 1, "m-1", "identity")
        + _str("CAF") + _str("CAF-enc-1") + b"\x01" + _str("COD-CAF-2026")
        + carrier["commitment"]
    )  # fmt: skip
    assert info == wrap_info(contexts[0], "CAF", "CAF-enc-1", "COD-CAF-2026", carrier["commitment"])
    hpke_key, base_nonce = hpke_base_schedule(
        private.private_bytes_raw(), enc, info, AEAD_CHACHA20POLY1305
    )
    group_key = crypto_aead_chacha20poly1305_ietf_decrypt(wrapped, b"", base_nonce, hpke_key)
    for context, record, plaintext in zip(contexts, records, plaintexts, strict=True):
        section_info = b"border-exchange/section-key-from-group/v2\x00" + _context(
            "COD", "a-1", 1, "m-1", context.name
        )
        section_key = _expand(_extract(b"", group_key), section_info, 32)
        committed = record["commitment"]
        opened = crypto_aead_chacha20poly1305_ietf_decrypt(
            record["ciphertext"], associated_data(context, committed), record["nonce"], section_key
        )
        assert opened == plaintext
        assert commitment(context, section_key, opened) == committed


def test_a_record_sealed_before_groups_opens_with_the_second_implementation() -> None:
    """A record of the first format (its wrap holds the section key itself), as the origin
    wrote it then: ``open_section`` still opens it, and so does the second implementation."""
    private = X25519PrivateKey.generate()
    context = SectionContext("COD", AlertType.WANTED_PERSON, "a-1", 1, "m-1", "identity")
    plaintext = b"\xc3\x01 the identity section record"
    section_key, nonce = os.urandom(32), os.urandom(12)
    committed = commitment(context, section_key, plaintext)
    ciphertext = ChaCha20Poly1305(section_key).encrypt(
        nonce, plaintext, associated_data(context, committed)
    )
    info = wrap_info(context, "CAF", "CAF-enc-1", "COD-CAF-2026", committed, tag=WRAP_TAG)
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    wrapped = suite.encrypt(section_key, private.public_key(), info=info)
    record = {
        "aead": "CHACHA20_POLY1305", "nonce": nonce, "ciphertext": ciphertext,
        "commitment": committed,
        "recipients": [{"participant": "CAF", "key_id": "CAF-enc-1", "kem": "X25519",
                        "agreement_id": "COD-CAF-2026", "wrapped": wrapped}],
    }  # fmt: skip
    old = json.loads((default_schema_dir() / HISTORY_DIR / "bx.SealedSection.v1.avsc").read_text())
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MAGIC + schema_fingerprint(old))
    schemaless_writer(buffer, parse_schema(old, named_schemas={}), record)
    v1 = buffer.getvalue()
    assert is_sealed(v1)
    held = RecipientPrivateKey("CAF-enc-1", EncryptionAlgorithm.X25519, private)
    assert open_section(context, v1, "CAF", [held]).plaintext == plaintext
    enc, body = wrapped[:32], wrapped[32:]
    hpke_key, base_nonce = hpke_base_schedule(
        private.private_bytes_raw(), enc, info, AEAD_CHACHA20POLY1305
    )
    unwrapped = crypto_aead_chacha20poly1305_ietf_decrypt(body, b"", base_nonce, hpke_key)
    assert unwrapped == section_key
