"""The trust store: participants, the hub, their public keys and validity windows.

It answers two questions for every component: which signing key of P was valid at
time T, and which encryption key of P a section sealed at T is wrapped to. The document
is YAML (see ``docs/contract.md``); ``parse_trust_store`` validates it with pydantic
models, is pure and names the path of every problem it finds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Final, TypedDict

import yaml
from nacl.signing import VerifyKey
from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator
from pydantic import ValidationError as PydanticValidationError

from border_exchange.domain.catalog import ParticipantKind, is_participant_id
from border_exchange.domain.times import iso
from border_exchange.errors import KeyNotValidError, KeyProblem, TrustStoreError

HUB: Final = "hub"
"""The owner name of the hub operator's keys in ``key_for``."""

PUBLIC_KEY_SIZE: Final = 32


class EncryptionAlgorithm(StrEnum):
    """The HPKE KEM of a recipient encryption key (RFC 9180; the hybrid of draft-ietf-hpke-pq)."""

    X25519 = "X25519"
    MLKEM768_X25519 = "MLKEM768-X25519"


ENCRYPTION_KEY_SIZES: Final[Mapping[EncryptionAlgorithm, int]] = MappingProxyType(
    {EncryptionAlgorithm.X25519: 32, EncryptionAlgorithm.MLKEM768_X25519: 1184 + 32}
)
"""Raw public key sizes: X25519's 32 bytes; ML-KEM-768's 1184 followed by X25519's 32."""


def _validity_problem(
    what: str,
    key_id: str,
    owner: str,
    window: tuple[datetime, datetime, datetime | None, str | None],
    at: datetime,
) -> tuple[KeyProblem, str] | None:
    """Why a key with validity ``window`` (from, until, revoked at, reason) does not count."""
    valid_from, valid_until, revoked_at, reason = window
    if revoked_at is not None and at >= revoked_at:
        return (
            KeyProblem.KEY_REVOKED,
            f"{what} {key_id} of {owner} revoked at {iso(revoked_at)}: "
            f"{reason or 'no reason given'}",
        )
    if at < valid_from:
        return (
            KeyProblem.KEY_NOT_YET_VALID,
            f"{what} {key_id} of {owner} is valid from {iso(valid_from)}, not at {iso(at)}",
        )
    if at >= valid_until:
        return (
            KeyProblem.KEY_EXPIRED,
            f"{what} {key_id} of {owner} expired at {iso(valid_until)}, before {iso(at)}",
        )
    return None


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
        window = (self.valid_from, self.valid_until, self.revoked_at, self.revocation_reason)
        return _validity_problem("key", self.key_id, self.owner, window, at)

    def valid_at(self, at: datetime) -> bool:
        """Whether this key counts at ``at``."""
        return self.problem_at(at) is None


@dataclass(frozen=True)
class EncryptionKey:
    """A participant's public key that gateways wrap section keys to, with its validity.

    Wrapped to only while it counts at the issue time; a rotated key (a later one counts)
    or a revoked one stops being wrapped to at once, while the participant keeps the
    private key to read what was wrapped to it before.
    """

    owner: str
    key_id: str
    algorithm: EncryptionAlgorithm
    raw: bytes
    valid_from: datetime
    valid_until: datetime  # exclusive
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    def problem_at(self, at: datetime) -> tuple[KeyProblem, str] | None:
        """Why this key may not be wrapped to at ``at``, or None when it may."""
        window = (self.valid_from, self.valid_until, self.revoked_at, self.revocation_reason)
        return _validity_problem("encryption key", self.key_id, self.owner, window, at)


@dataclass(frozen=True)
class Participant:
    """A national police service or a UN police component, with its keys."""

    id: str
    name: str
    kind: ParticipantKind
    status: str
    posts: tuple[str, ...]
    keys: tuple[PublicKey, ...]
    encryption_keys: tuple[EncryptionKey, ...] = ()
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

    def current_post_key(self, participant: str, post: str, at: datetime) -> PublicKey:
        """The most recent key of post ``post`` of ``participant`` valid at ``at``; raises
        ``KeyNotValidError``."""
        member = self.participants.get(participant)
        owner = post_owner(participant, post)
        valid = [k for k in (member.post_keys if member else ()) if k.owner == owner]
        valid = [key for key in valid if key.valid_at(at)]
        if not valid:
            raise KeyNotValidError(
                f"post {owner} has no key valid at {iso(at)}", KeyProblem.UNKNOWN_KEY
            )
        return max(valid, key=lambda key: key.valid_from)

    def current_key(self, owner: str, at: datetime) -> PublicKey:
        """The most recent key of ``owner`` valid at ``at``; raises ``KeyNotValidError``."""
        valid = [key for key in self.keys_of(owner) if key.valid_at(at)]
        if not valid:
            raise KeyNotValidError(f"{owner} has no key valid at {iso(at)}", KeyProblem.UNKNOWN_KEY)
        return max(valid, key=lambda key: key.valid_from)

    def encryption_key_for(self, owner: str, at: datetime) -> EncryptionKey:
        """The encryption key of ``owner`` to wrap to at ``at``: of those that count then,
        the latest to take effect; raises ``KeyNotValidError`` when none counts."""
        participant = self.participants.get(owner)
        if participant is None:
            raise KeyNotValidError(f"unknown participant {owner!r}", KeyProblem.UNKNOWN_PARTICIPANT)
        valid = [key for key in participant.encryption_keys if key.problem_at(at) is None]
        if not valid:
            raise KeyNotValidError(
                f"{owner} has no encryption key valid at {iso(at)}", KeyProblem.UNKNOWN_KEY
            )
        return max(valid, key=lambda key: key.valid_from)


def post_owner(participant: str, post: str) -> str:
    """The owner name of a post's keys: ``<participant>.post.<post>``, its Kafka user's name."""
    return f"{participant}.post.{post}"


_TIME_EXAMPLE: Final = "a time such as 2026-01-01T00:00:00Z"


def _aware(value: object) -> datetime:
    """A time with a zone, in UTC: an ISO 8601 string or a YAML timestamp."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"must be {_TIME_EXAMPLE}")
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (e.g. Z)")
    return value.astimezone(UTC)


def _non_empty(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError("must be a non-empty string")


_Time = Annotated[datetime, BeforeValidator(_aware)]
_Text = Annotated[str, BeforeValidator(_non_empty)]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _KeyDoc(_Document):
    """A key entry: id, base64 public key, validity window, revocation."""

    key_id: _Text
    public_key: str
    valid_from: _Time
    valid_until: _Time
    revoked_at: _Time | None = None
    revocation_reason: str | None = None


class _EncryptionKeyDoc(_KeyDoc):
    """A recipient encryption key entry: a key entry with its algorithm."""

    algorithm: EncryptionAlgorithm = EncryptionAlgorithm.X25519


class _PostKeyDoc(_KeyDoc):
    """A border post's key entry: a key entry with the post it belongs to."""

    post: _Text


class _ParticipantDoc(_Document):
    id: _Text
    name: _Text
    kind: str
    status: str = "active"
    posts: tuple[_Text, ...] = ()
    keys: tuple[_KeyDoc, ...] = ()
    encryption_keys: tuple[_EncryptionKeyDoc, ...] = ()
    post_keys: tuple[_PostKeyDoc, ...] = ()
    entry_signature: object = None
    """Read by ``domain.trust_governance``."""

    @field_validator("id")
    @classmethod
    def _participant_id(cls, value: str) -> str:
        if not is_participant_id(value):
            raise ValueError(f"{value!r} is not an ISO alpha-3 code or UN-<MISSION>")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in {kind.value for kind in ParticipantKind}:
            raise ValueError("must be NATIONAL_SERVICE or UN_COMPONENT")
        return value

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        if value not in ("active", "suspended"):
            raise ValueError("must be active or suspended")
        return value


class _HubDoc(_Document):
    keys: tuple[_KeyDoc, ...] = ()
    auditors: tuple[_Text, ...] = ()


class _StoreDoc(_Document):
    version: int
    hub: _HubDoc = _HubDoc()
    participants: tuple[_ParticipantDoc, ...] = ()
    governance: object = None
    approvals: object = None
    """Both read by ``domain.trust_governance``."""

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> int:
        if value != 1 or isinstance(value, bool):
            raise ValueError("must be 1")
        return 1

    @field_validator("participants", "posts", "keys", "encryption_keys", "post_keys", "auditors",
                     mode="before", check_fields=False)  # fmt: skip
    @classmethod
    def _list(cls, value: object) -> object:
        return () if value is None else value


def _where(location: tuple[int | str, ...]) -> str:
    """``participants[0].keys[1].public_key`` for pydantic's location tuple."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path or "(document)"


def _problems(error: PydanticValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "missing"
        elif item["type"] in ("model_type", "dict_type"):
            message = "must be a mapping"
        elif item["type"] in ("tuple_type", "list_type"):
            message = "must be a list"
        problems.append(f"{_where(tuple(item['loc']))}: {message}")
    return problems


class _Window(TypedDict):
    """A key's validity window, as both kinds of key take it: from, until, revocation."""

    valid_from: datetime
    valid_until: datetime
    revoked_at: datetime | None
    revocation_reason: str | None


def _window(doc: _KeyDoc) -> _Window:
    return {
        "valid_from": doc.valid_from,
        "valid_until": doc.valid_until,
        "revoked_at": doc.revoked_at,
        "revocation_reason": doc.revocation_reason,
    }


class _Builder:
    """Turns the validated document into values, collecting what the models cannot see."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.key_ids: set[str] = set()

    def fail(self, path: str, problem: str) -> None:
        self.problems.append(f"{path}: {problem}")

    def _common(self, doc: _KeyDoc, path: str, sizes: tuple[int, ...], what: str) -> bytes:
        if doc.key_id in self.key_ids:
            self.fail(f"{path}.key_id", f"duplicate key id {doc.key_id!r}")
        self.key_ids.add(doc.key_id)
        raw = b""
        with contextlib.suppress(binascii.Error, ValueError):
            raw = base64.b64decode(doc.public_key, validate=True)
        if len(raw) not in sizes:
            self.fail(f"{path}.public_key", f"must be base64 of {what}")
        if doc.valid_until <= doc.valid_from:
            self.fail(f"{path}.valid_until", "must be after valid_from")
        return raw

    def keys(
        self, docs: tuple[_KeyDoc, ...], path: str, owner: str, posts: tuple[str, ...] = ()
    ) -> tuple[PublicKey, ...]:
        keys = []
        for i, doc in enumerate(docs):
            if isinstance(doc, _PostKeyDoc):
                if doc.post not in posts:
                    self.fail(f"{path}[{i}].post", f"{doc.post!r} is not one of the posts")
                    continue
                key_owner = post_owner(owner, doc.post)
            else:
                key_owner = owner
            raw = self._common(doc, f"{path}[{i}]", (PUBLIC_KEY_SIZE,), "a raw 32-byte Ed25519 key")
            if not self.problems:
                keys.append(PublicKey(key_owner, doc.key_id, raw, **_window(doc)))
        return tuple(keys)

    def encryption_keys(
        self, docs: tuple[_EncryptionKeyDoc, ...], path: str, owner: str
    ) -> tuple[EncryptionKey, ...]:
        keys = []
        for i, doc in enumerate(docs):
            size = ENCRYPTION_KEY_SIZES[doc.algorithm]
            raw = self._common(
                doc, f"{path}[{i}]", (size,), f"a raw {size}-byte {doc.algorithm} public key"
            )
            if not self.problems:
                keys.append(EncryptionKey(owner, doc.key_id, doc.algorithm, raw, **_window(doc)))
        return tuple(keys)


def parse_trust_store(text: str) -> TrustStore:
    """The trust store in YAML ``text``; raises ``TrustStoreError`` listing every problem,
    each with its path (``participants[0].keys[1].public_key: ...``)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrustStoreError(f"trust store is not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping):
        raise TrustStoreError("invalid trust store: (document): must be a mapping")
    try:
        doc = _StoreDoc.model_validate(document)
    except PydanticValidationError as exc:
        raise TrustStoreError("invalid trust store: " + "; ".join(_problems(exc))) from None
    build = _Builder()
    hub = Hub(keys=build.keys(doc.hub.keys, "hub.keys", HUB), auditors=doc.hub.auditors)
    participants: dict[str, Participant] = {}
    for i, entry in enumerate(doc.participants):
        path = f"participants[{i}]"
        if entry.id in participants:
            build.fail(f"{path}.id", f"duplicate participant id {entry.id!r}")
        participants[entry.id] = Participant(
            entry.id,
            entry.name,
            ParticipantKind(entry.kind),
            entry.status,
            entry.posts,
            build.keys(entry.keys, f"{path}.keys", entry.id),
            build.encryption_keys(entry.encryption_keys, f"{path}.encryption_keys", entry.id),
            build.keys(entry.post_keys, f"{path}.post_keys", entry.id, entry.posts),
        )
    if build.problems:
        raise TrustStoreError("invalid trust store: " + "; ".join(build.problems))
    return TrustStore(MappingProxyType(participants), hub)


def _published(key: PublicKey | EncryptionKey) -> dict[str, Any]:
    """What every trust store entry says of ``key``: its public key and validity window."""
    return {
        "public_key": base64.b64encode(key.raw).decode("ascii"),
        "valid_from": iso(key.valid_from),
        "valid_until": iso(key.valid_until),
        "revoked_at": None if key.revoked_at is None else iso(key.revoked_at),
        "revocation_reason": key.revocation_reason,
    }


def key_entry(key: PublicKey) -> dict[str, Any]:
    """The trust store entry of ``key``, as it appears under ``keys:`` (``post_keys:`` with
    the ``post`` it belongs to)."""
    _, dot, post = key.owner.partition(".post.")
    return {
        **({"post": post} if dot else {}),
        "key_id": key.key_id,
        **_published(key),
    }


def encryption_key_entry(key: EncryptionKey) -> dict[str, Any]:
    """The trust store entry of ``key``, as it appears under ``encryption_keys:``."""
    return {
        "key_id": key.key_id,
        "algorithm": key.algorithm.value,
        **_published(key),
    }
