"""The trust store: participants, the hub, their Ed25519 public keys and validity windows.

It answers one question for every component: which key of P was valid at time T.
The document is YAML (see ``docs/contract.md``); ``parse_trust_store`` is pure and
names the path of every problem it finds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import yaml
from nacl.signing import VerifyKey

from border_exchange.domain.catalog import ParticipantKind, is_participant_id
from border_exchange.errors import KeyNotValidError, KeyProblem, TrustStoreError

HUB: Final = "hub"
"""The owner name of the hub operator's keys in ``key_for``."""

PUBLIC_KEY_SIZE: Final = 32


@dataclass(frozen=True)
class PublicKey:
    """One Ed25519 public key of a participant or of the hub, with its validity."""

    owner: str
    key_id: str
    raw: bytes
    valid_from: datetime
    valid_until: datetime  # exclusive
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    verify_key: VerifyKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_SIZE:
            raise TrustStoreError(f"{self.key_id}: an Ed25519 public key has 32 bytes")
        object.__setattr__(self, "verify_key", VerifyKey(self.raw))

    def problem_at(self, at: datetime) -> tuple[KeyProblem, str] | None:
        """Why this key does not count at ``at``, or None when it does."""
        if self.revoked_at is not None and at >= self.revoked_at:
            reason = self.revocation_reason or "no reason given"
            return (
                KeyProblem.KEY_REVOKED,
                f"key {self.key_id} of {self.owner} revoked at {_iso(self.revoked_at)}: {reason}",
            )
        if at < self.valid_from:
            return (
                KeyProblem.KEY_NOT_YET_VALID,
                f"key {self.key_id} of {self.owner} is valid from {_iso(self.valid_from)}, "
                f"not at {_iso(at)}",
            )
        if at >= self.valid_until:
            return (
                KeyProblem.KEY_EXPIRED,
                f"key {self.key_id} of {self.owner} expired at {_iso(self.valid_until)}, "
                f"before {_iso(at)}",
            )
        return None

    def valid_at(self, at: datetime) -> bool:
        """Whether this key counts at ``at``."""
        return self.problem_at(at) is None


@dataclass(frozen=True)
class Participant:
    """A national police service or a UN police component, with its keys."""

    id: str
    name: str
    kind: ParticipantKind
    status: str
    posts: tuple[str, ...]
    keys: tuple[PublicKey, ...]
    post_keys: tuple[PublicKey, ...] = ()
    """Keys of its border posts (owner ``<P>.post.<name>``): they sign hit reports only."""

    @property
    def active(self) -> bool:
        """Whether the participant is active (not suspended)."""
        return self.status == "active"


@dataclass(frozen=True)
class Hub:
    """The hub operator: its keys (audit chain heads) and its auditors' names."""

    keys: tuple[PublicKey, ...] = ()
    auditors: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrustStore:
    """Participants and hub, with every public key and its validity."""

    participants: Mapping[str, Participant]
    hub: Hub = Hub()

    def keys_of(self, owner: str) -> tuple[PublicKey, ...]:
        """All keys of ``owner`` (a participant id or ``"hub"``)."""
        if owner == HUB:
            return self.hub.keys
        participant = self.participants.get(owner)
        if participant is None:
            raise KeyNotValidError(f"unknown participant {owner!r}", KeyProblem.UNKNOWN_PARTICIPANT)
        return participant.keys

    def key_for(self, owner: str, key_id: str, at: datetime) -> PublicKey:
        """Key ``key_id`` of ``owner`` if it was valid at ``at``; raises ``KeyNotValidError``."""
        for key in self.keys_of(owner):
            if key.key_id == key_id:
                problem = key.problem_at(at)
                if problem is not None:
                    raise KeyNotValidError(problem[1], problem[0])
                return key
        raise KeyNotValidError(f"{owner} has no key {key_id!r}", KeyProblem.UNKNOWN_KEY)

    def post_key_for(self, participant: str, post: str, key_id: str, at: datetime) -> PublicKey:
        """Key ``key_id`` of post ``post`` of ``participant`` if valid at ``at``; raises
        ``KeyNotValidError`` (a post key never signs an alert, nor a service key a report)."""
        member = self.participants.get(participant)
        if member is None:
            raise KeyNotValidError(
                f"unknown participant {participant!r}", KeyProblem.UNKNOWN_PARTICIPANT
            )
        owner = post_owner(participant, post)
        for key in member.post_keys:
            if key.key_id == key_id and key.owner == owner:
                problem = key.problem_at(at)
                if problem is not None:
                    raise KeyNotValidError(problem[1], problem[0])
                return key
        raise KeyNotValidError(f"post {owner} has no key {key_id!r}", KeyProblem.UNKNOWN_KEY)

    def current_key(self, owner: str, at: datetime) -> PublicKey:
        """The most recent key of ``owner`` valid at ``at``; raises ``KeyNotValidError``."""
        valid = [key for key in self.keys_of(owner) if key.valid_at(at)]
        if not valid:
            raise KeyNotValidError(
                f"{owner} has no key valid at {_iso(at)}", KeyProblem.UNKNOWN_KEY
            )
        return max(valid, key=lambda key: key.valid_from)


def post_owner(participant: str, post: str) -> str:
    """The owner name of a post's keys: ``<participant>.post.<post>``, its Kafka user's name."""
    return f"{participant}.post.{post}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Reader:
    """Collects the problems of a trust store document, each with its path."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.key_ids: set[str] = set()

    def fail(self, path: str, problem: str) -> None:
        self.problems.append(f"{path}: {problem}")

    def mapping(self, value: object, path: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.fail(path, "must be a mapping")
        return {}

    def sequence(self, value: object, path: str) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.fail(path, "must be a list")
        return []

    def text(self, value: object, path: str) -> str:
        if isinstance(value, str) and value.strip():
            return value
        self.fail(path, "must be a non-empty string")
        return ""

    def time(self, value: object, path: str) -> datetime | None:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                self.fail(path, f"not an ISO 8601 time: {value!r}")
                return None
        if not isinstance(value, datetime):
            self.fail(path, "must be a time such as 2026-01-01T00:00:00Z")
            return None
        if value.tzinfo is None:
            self.fail(path, "must carry a time zone (e.g. Z)")
            return None
        return value.astimezone(UTC)

    def key(self, value: object, path: str, owner: str) -> PublicKey | None:
        entry = self.mapping(value, path)
        known = {
            "key_id",
            "public_key",
            "valid_from",
            "valid_until",
            "revoked_at",
            "revocation_reason",
            *(("post",) if owner.count(".") else ()),
        }
        for extra in sorted(set(entry) - known):
            self.fail(f"{path}.{extra}", "unknown field")
        key_id = self.text(entry.get("key_id"), f"{path}.key_id")
        if key_id in self.key_ids:
            self.fail(f"{path}.key_id", f"duplicate key id {key_id!r}")
        self.key_ids.add(key_id)
        raw = b""
        with contextlib.suppress(binascii.Error):
            raw = base64.b64decode(str(entry.get("public_key", "")), validate=True)
        if len(raw) != PUBLIC_KEY_SIZE:
            self.fail(f"{path}.public_key", "must be base64 of a raw 32-byte Ed25519 key")
        valid_from = self.time(entry.get("valid_from"), f"{path}.valid_from")
        valid_until = self.time(entry.get("valid_until"), f"{path}.valid_until")
        if valid_from and valid_until and valid_until <= valid_from:
            self.fail(f"{path}.valid_until", "must be after valid_from")
        revoked_at = None
        if entry.get("revoked_at") is not None:
            revoked_at = self.time(entry["revoked_at"], f"{path}.revoked_at")
        reason = entry.get("revocation_reason")
        if reason is not None and not isinstance(reason, str):
            self.fail(f"{path}.revocation_reason", "must be a string")
            reason = None
        if self.problems or not (valid_from and valid_until):
            return None
        return PublicKey(owner, key_id, raw, valid_from, valid_until, revoked_at, reason)

    def keys(self, value: object, path: str, owner: str) -> tuple[PublicKey, ...]:
        found = [
            self.key(item, f"{path}[{i}]", owner)
            for i, item in enumerate(self.sequence(value, path))
        ]
        return tuple(key for key in found if key is not None)

    def post_keys(
        self, value: object, path: str, participant: str, posts: tuple[str, ...]
    ) -> tuple[PublicKey, ...]:
        """The ``post_keys`` of a participant: key entries, each naming its ``post``."""
        found: list[PublicKey] = []
        for i, item in enumerate(self.sequence(value, path)):
            post = self.mapping(item, f"{path}[{i}]").get("post")
            if post not in posts:
                self.fail(f"{path}[{i}].post", f"{post!r} is not one of the participant's posts")
                continue
            key = self.key(item, f"{path}[{i}]", post_owner(participant, str(post)))
            if key is not None:
                found.append(key)
        return tuple(found)


def parse_trust_store(text: str) -> TrustStore:
    """The trust store in YAML ``text``; raises ``TrustStoreError`` listing every problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrustStoreError(f"trust store is not valid YAML: {exc}") from exc
    reader = _Reader()
    root = reader.mapping(document, "(document)")
    if root and root.get("version") != 1:
        reader.fail("version", "must be 1")
    hub_doc = reader.mapping(root.get("hub", {}), "hub")
    hub = Hub(
        keys=reader.keys(hub_doc.get("keys"), "hub.keys", HUB),
        auditors=tuple(
            reader.text(name, f"hub.auditors[{i}]")
            for i, name in enumerate(reader.sequence(hub_doc.get("auditors"), "hub.auditors"))
        ),
    )
    participants: dict[str, Participant] = {}
    for i, item in enumerate(reader.sequence(root.get("participants"), "participants")):
        path = f"participants[{i}]"
        entry = reader.mapping(item, path)
        pid = reader.text(entry.get("id"), f"{path}.id")
        if pid and not is_participant_id(pid):
            reader.fail(f"{path}.id", f"{pid!r} is not an ISO alpha-3 code or UN-<MISSION>")
        if pid in participants:
            reader.fail(f"{path}.id", f"duplicate participant id {pid!r}")
        name = reader.text(entry.get("name"), f"{path}.name")
        try:
            kind = ParticipantKind(str(entry.get("kind")))
        except ValueError:
            reader.fail(f"{path}.kind", "must be NATIONAL_SERVICE or UN_COMPONENT")
            kind = ParticipantKind.NATIONAL_SERVICE
        status = entry.get("status", "active")
        if status not in ("active", "suspended"):
            reader.fail(f"{path}.status", "must be active or suspended")
        posts = tuple(
            reader.text(post, f"{path}.posts[{j}]")
            for j, post in enumerate(reader.sequence(entry.get("posts"), f"{path}.posts"))
        )
        keys = reader.keys(entry.get("keys"), f"{path}.keys", pid)
        post_keys = reader.post_keys(entry.get("post_keys"), f"{path}.post_keys", pid, posts)
        participants[pid] = Participant(pid, name, kind, str(status), posts, keys, post_keys)
    if reader.problems:
        raise TrustStoreError("invalid trust store: " + "; ".join(reader.problems))
    return TrustStore(MappingProxyType(participants), hub)


def key_entry(key: PublicKey) -> dict[str, Any]:
    """The trust store entry of ``key``, as it appears under ``keys:`` (``post_keys:`` with
    the ``post`` it belongs to)."""
    _, dot, post = key.owner.partition(".post.")
    return {
        **({"post": post} if dot else {}),
        "key_id": key.key_id,
        "public_key": base64.b64encode(key.raw).decode("ascii"),
        "valid_from": _iso(key.valid_from),
        "valid_until": _iso(key.valid_until),
        "revoked_at": None if key.revoked_at is None else _iso(key.revoked_at),
        "revocation_reason": key.revocation_reason,
    }
