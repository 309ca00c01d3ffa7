"""A trust store no single operator can rewrite: signed entries, quorum approvals, validity.

A governed trust store document carries, besides the participants and the hub:

- ``governance: {serial, valid_from, valid_until}``: a serial that only grows and a
  validity window (a store outside its window is stale and refused, as X-Road's
  central configuration expires);
- on each participant, ``entry_signature: {key_id, signature}``: the participant's
  signature of its own entry (name, kind, status, posts, keys, encryption keys);
- ``approvals: [{participant, key_id, signature}]``: signatures of the store's digest.

``accept(new, old, now)`` says why ``new`` may not replace the last valid store
``old`` (empty: it may). An entry must be signed by a key that the participant held in
``old`` and that is valid and not revoked (a rotation is signed by the key it replaces,
or any current key), or, for a participant ``old`` does not list, by a key of its own
new entry. Admitting, suspending or removing a participant, or changing the hub, needs
the approvals of a majority of ``old``'s active participants, each with a key it held
in ``old``. The first store (no ``old``) needs every entry self-signed and the
approvals of a majority of its own active participants.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import yaml
from nacl.signing import SigningKey

from border_exchange.domain.signing import SIGNATURE_SIZE, signature_holds
from border_exchange.domain.times import iso
from border_exchange.domain.trust import (
    Participant,
    PublicKey,
    TrustStore,
    encryption_key_entry,
    key_entry,
)
from border_exchange.errors import TrustStoreError

ENTRY_TAG: Final = b"border-exchange/trust-entry/v1\x00"
STORE_TAG: Final = b"border-exchange/trust-store/v1\x00"


@dataclass(frozen=True, slots=True)
class Signature:
    """A signature by ``participant`` with its key ``key_id``."""

    participant: str
    key_id: str
    raw: bytes


@dataclass(frozen=True)
class GovernedStore:
    """A trust store with its governance: serial, window, entry signatures and approvals."""

    store: TrustStore
    serial: int
    valid_from: datetime
    valid_until: datetime
    entry_signatures: Mapping[str, Signature]
    approvals: tuple[Signature, ...]

    def entry_digest(self, participant: str) -> bytes:
        """SHA-256 of the canonical entry of ``participant``."""
        return entry_digest(self.store.participants[participant])

    @property
    def digest(self) -> bytes:
        """SHA-256 of the canonical store content the approvals sign."""
        return store_digest(self.store, self.serial, self.valid_from, self.valid_until)


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _entry(member: Participant) -> dict[str, Any]:
    entry = {
        "id": member.id,
        "name": member.name,
        "kind": member.kind.value,
        "status": member.status,
        "posts": list(member.posts),
        "keys": [key_entry(key) for key in sorted(member.keys, key=lambda k: k.key_id)],
    }
    if member.encryption_keys:  # absent before encryption keys existed: old signatures hold
        entry["encryption_keys"] = [
            encryption_key_entry(key)
            for key in sorted(member.encryption_keys, key=lambda k: k.key_id)
        ]
    if member.post_keys:  # absent before posts had keys: old signatures hold
        entry["post_keys"] = [
            key_entry(key) for key in sorted(member.post_keys, key=lambda k: k.key_id)
        ]
    return entry


def entry_digest(member: Participant) -> bytes:
    """SHA-256 of a participant's canonical entry: what the participant signs."""
    return hashlib.sha256(ENTRY_TAG + _json(_entry(member))).digest()


def store_digest(store: TrustStore, serial: int, valid_from: datetime, until: datetime) -> bytes:
    """SHA-256 of the canonical store: serial, window, hub and every entry's digest."""
    content = {
        "serial": serial,
        "valid_from": iso(valid_from),
        "valid_until": iso(until),
        "hub": {
            "keys": [key_entry(key) for key in sorted(store.hub.keys, key=lambda k: k.key_id)],
            "auditors": sorted(store.hub.auditors),
        },
        "participants": {pid: entry_digest(m).hex() for pid, m in store.participants.items()},
    }
    return hashlib.sha256(STORE_TAG + _json(content)).digest()


def sign(digest: bytes, participant: str, key_id: str, key: SigningKey) -> Signature:
    """``participant``'s signature of ``digest`` (an entry's or the store's)."""
    return Signature(participant, key_id, bytes(key.sign(digest).signature))


def _signature(value: object, path: str, participant: str | None = None) -> Signature:
    if not isinstance(value, Mapping):
        raise TrustStoreError(f"{path}: must be a mapping with key_id and signature")
    owner = participant if participant is not None else value.get("participant")
    key_id = value.get("key_id")
    try:
        raw = base64.b64decode(str(value.get("signature", "")), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not isinstance(owner, str) or not isinstance(key_id, str):
        raise TrustStoreError(f"{path}: names no participant or key_id")
    if len(raw) != SIGNATURE_SIZE:
        raise TrustStoreError(f"{path}: signature of {owner} is not base64 of 64 bytes")
    return Signature(owner, key_id, raw)


def _time(value: object, path: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise TrustStoreError(f"{path}: not an ISO 8601 time: {value!r}") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise TrustStoreError(f"{path}: must be a time with a zone")
    return value.astimezone(UTC)


def governed(text: str, store: TrustStore) -> GovernedStore | None:
    """The governance of the trust store document ``text`` (parsed as ``store``); None when
    the document has no ``governance`` section."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrustStoreError(f"trust store is not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping) or "governance" not in document:
        return None
    section = document["governance"]
    if not isinstance(section, Mapping) or not isinstance(section.get("serial"), int):
        raise TrustStoreError("governance: must give an integer serial and a validity window")
    entries: dict[str, Signature] = {}
    for index, item in enumerate(document.get("participants") or ()):
        if isinstance(item, Mapping) and item.get("entry_signature") is not None:
            pid = str(item.get("id"))
            path = f"participants[{index}] ({pid}).entry_signature"
            entries[pid] = _signature(item["entry_signature"], path, pid)
    approvals = tuple(
        _signature(item, f"approvals[{index}]")
        for index, item in enumerate(document.get("approvals") or ())
    )
    return GovernedStore(
        store,
        section["serial"],
        _time(section.get("valid_from"), "governance.valid_from"),
        _time(section.get("valid_until"), "governance.valid_until"),
        MappingProxyType(entries),
        approvals,
    )


def _verifies(
    signature: Signature, digest: bytes, keys: Iterable[PublicKey], now: datetime
) -> bool:
    for key in keys:
        if key.key_id == signature.key_id and key.valid_at(now) and key.revoked_at is None:
            return signature_holds(signature.raw + digest, key.raw)
    return False


def _membership(store: TrustStore) -> tuple[Any, ...]:
    return (
        tuple(sorted((pid, m.status) for pid, m in store.participants.items())),
        tuple(sorted(key.key_id for key in store.hub.keys)),
        tuple(sorted(store.hub.auditors)),
    )


def stale(governance: GovernedStore, now: datetime) -> str | None:
    """Why ``governance`` is outside its validity window at ``now``; None when inside."""
    if governance.valid_from <= now < governance.valid_until:
        return None
    return (
        f"stale: valid from {iso(governance.valid_from)} until "
        f"{iso(governance.valid_until)}, not at {iso(now)}"
    )


def accept(new: GovernedStore, old: GovernedStore | None, now: datetime) -> list[str]:
    """Why ``new`` may not replace ``old`` at ``now``; empty when it may."""
    problems: list[str] = []
    expired = stale(new, now)
    if expired is not None:
        problems.append(expired)
    if old is not None and new.serial <= old.serial and new.digest != old.digest:
        problems.append(f"serial {new.serial} is not after the store in force ({old.serial})")
    before = {} if old is None else dict(old.store.participants)
    for pid, member in new.store.participants.items():
        signature = new.entry_signatures.get(pid)
        if signature is None:
            problems.append(f"the entry of {pid} is not signed")
            continue
        signers = before[pid].keys if pid in before else member.keys
        if not _verifies(signature, entry_digest(member), signers, now):
            which = "a key it held in the store in force" if pid in before else "its own key"
            problems.append(f"the entry of {pid} is not signed by {which} (key {signature.key_id})")
    changed = old is None or _membership(new.store) != _membership(old.store)
    if changed:
        electorate = (old or new).store.participants
        active = sorted(pid for pid, m in electorate.items() if m.active)
        needed = len(active) // 2 + 1
        approved = sorted(
            {
                s.participant
                for s in new.approvals
                if s.participant in active
                and _verifies(s, new.digest, electorate[s.participant].keys, now)
            }
        )
        if len(approved) < needed:
            problems.append(
                f"admitting, suspending or removing a participant, or changing the hub, "
                f"needs the approval of {needed} of the {len(active)} active participants "
                f"({', '.join(active)}); approved by {', '.join(approved) or 'none'}"
            )
    return problems


def governance_document(
    store: TrustStore,
    base: Mapping[str, Any],
    *,
    serial: int,
    valid_from: datetime,
    valid_until: datetime,
    entry_keys: Mapping[str, tuple[str, SigningKey]],
    approvers: Mapping[str, tuple[str, SigningKey]],
) -> dict[str, Any]:
    """The trust store document ``base`` (as ``trust_store_yaml`` writes it) with its
    governance: each entry signed with ``entry_keys[pid]``, the store approved by each of
    ``approvers``."""
    document = dict(base)
    document["governance"] = {
        "serial": serial,
        "valid_from": iso(valid_from),
        "valid_until": iso(valid_until),
    }
    participants = []
    for item in base.get("participants") or ():
        entry = dict(item)
        pid = entry["id"]
        if pid in entry_keys:
            key_id, key = entry_keys[pid]
            signature = sign(entry_digest(store.participants[pid]), pid, key_id, key)
            entry["entry_signature"] = {
                "key_id": key_id,
                "signature": base64.b64encode(signature.raw).decode("ascii"),
            }
        participants.append(entry)
    document["participants"] = participants
    digest = store_digest(store, serial, valid_from, valid_until)
    document["approvals"] = [
        {
            "participant": pid,
            "key_id": key_id,
            "signature": base64.b64encode(sign(digest, pid, key_id, key).raw).decode("ascii"),
        }
        for pid, (key_id, key) in approvers.items()
    ]
    return document


def _text(signature: Signature) -> str:
    return base64.b64encode(signature.raw).decode("ascii")


def signatures_of(
    governance: GovernedStore, participant: str, key_id: str, key: SigningKey
) -> dict[str, Any]:
    """``participant``'s signature of its own entry and its approval of the whole store, as
    the file its officer sends to the hub."""
    entry = sign(governance.entry_digest(participant), participant, key_id, key)
    approval = sign(governance.digest, participant, key_id, key)
    return {
        "participant": participant,
        "key_id": key_id,
        "store_digest": governance.digest.hex(),
        "entry_signature": _text(entry),
        "approval": _text(approval),
    }


def with_signatures(
    document: Mapping[str, Any], files: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The trust store ``document`` with each participant's entry signature and approval."""
    result = dict(document)
    participants = [dict(item) for item in document.get("participants") or ()]
    approvals = [dict(item) for item in document.get("approvals") or ()]
    for signed in files:
        pid, key_id = signed["participant"], signed["key_id"]
        for entry in participants:
            if entry.get("id") == pid:
                entry["entry_signature"] = {
                    "key_id": key_id,
                    "signature": signed["entry_signature"],
                }
                break
        else:
            raise TrustStoreError(f"the trust store has no participant {pid!r} to sign for")
        approvals = [a for a in approvals if a.get("participant") != pid]
        approvals.append({"participant": pid, "key_id": key_id, "signature": signed["approval"]})
    result["participants"] = participants
    result["approvals"] = approvals
    return result


TRUST_STORE_HEADER: Final = "bx-trust-store"
"""The header on each agreements-topic record naming the governed trust store the router
held when it published the set: ``<serial>:<digest hex>``. Absent: the router's store was
not governed."""


@dataclass(frozen=True, slots=True)
class StoreReference:
    """Which governed trust store a router routed under: its serial and digest (hex)."""

    serial: int
    digest: str

    def value(self) -> bytes:
        """The header value."""
        return f"{self.serial}:{self.digest}".encode("ascii")

    @classmethod
    def of(cls, governance: GovernedStore) -> StoreReference:
        """The reference of ``governance``."""
        return cls(governance.serial, governance.digest.hex())

    @classmethod
    def parse(cls, value: bytes) -> StoreReference | None:
        """The reference in a header value; None when it is not ``<serial>:<64 hex>``."""
        serial, _, digest = value.decode("ascii", errors="replace").partition(":")
        if not serial.isdigit() or len(digest) != 64:
            return None
        try:
            bytes.fromhex(digest)
        except ValueError:
            return None
        return cls(int(serial), digest)
