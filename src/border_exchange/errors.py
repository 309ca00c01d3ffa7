"""The one exception hierarchy of border-exchange.

Every error the package raises on purpose is a ``BorderExchangeError``; errors of
the libraries below (aiokafka, fastavro, cryptography, pydantic) are mapped to
one of these with ``raise ... from``, so callers catch one family.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Generic, TypeVar

Reason = TypeVar("Reason", bound=str)


class BorderExchangeError(Exception):
    """Base of every error border-exchange raises on purpose."""


class ReasonedError(BorderExchangeError, Generic[Reason]):
    """An error that carries a machine-readable ``reason`` beside its message."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


class ConfigError(BorderExchangeError):
    """A configuration file, option or environment variable is missing or wrong."""


class ValidationError(BorderExchangeError):
    """Input does not satisfy the contract; ``problems`` names each field path and rule."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message if not problems else message + ": " + "; ".join(problems))
        self.problems = problems


class DecodeError(BorderExchangeError):
    """Bytes are not a well-formed record of a known schema."""


class SchemaError(BorderExchangeError):
    """A schema is missing, unreadable or incompatible with an earlier version."""


class SignatureProblem(StrEnum):
    """Machine-readable reason of a ``SignatureError``."""

    BAD_SIGNATURE = "BAD_SIGNATURE"
    DIGEST_MISMATCH = "DIGEST_MISMATCH"
    SECTION_LAYOUT = "SECTION_LAYOUT"
    KEY_MISMATCH = "KEY_MISMATCH"
    UNKNOWN_SCHEMA = "UNKNOWN_SCHEMA"


class SignatureError(ReasonedError[SignatureProblem]):
    """A signature or a section digest does not verify; the message must not be trusted."""


class SectionProblem(StrEnum):
    """Machine-readable reason of a ``SectionError``: why a sealed section does not open."""

    MALFORMED = "MALFORMED"
    NO_WRAPPED_KEY = "NO_WRAPPED_KEY"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    WRAPPED_KEY_INVALID = "WRAPPED_KEY_INVALID"
    CIPHERTEXT_INVALID = "CIPHERTEXT_INVALID"
    COMMITMENT_MISMATCH = "COMMITMENT_MISMATCH"


class SectionError(ReasonedError[SectionProblem]):
    """A sealed section does not open for this recipient; the rest of the message may."""


class KeyProblem(StrEnum):
    """Machine-readable reason of a ``KeyNotValidError``."""

    UNKNOWN_PARTICIPANT = "UNKNOWN_PARTICIPANT"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    KEY_NOT_YET_VALID = "KEY_NOT_YET_VALID"
    KEY_EXPIRED = "KEY_EXPIRED"
    KEY_REVOKED = "KEY_REVOKED"
    KEY_LOCKED = "KEY_LOCKED"


class KeyNotValidError(ReasonedError[KeyProblem]):
    """A key is unknown, not valid at the time asked, revoked, or cannot be unlocked."""


class TrustStoreError(BorderExchangeError):
    """The trust store document is malformed or inconsistent."""


class TrustStoreExpiredError(TrustStoreError):
    """The governed trust store in force is past its validity window: nothing may be routed
    under it until a valid one replaces it."""


class PolicyError(BorderExchangeError):
    """An agreement set is malformed or inconsistent."""


class KafkaError(BorderExchangeError):
    """Talking to Kafka failed; wraps the aiokafka error that caused it."""


class CommitUnknownError(KafkaError):
    """A commit was sent but its answer never came, and the broker could not say since
    whether it took effect: the records may have been published."""


class UndeliverableError(KafkaError):
    """The broker refused records for good (too large, invalid, unauthorized): by offset, why."""

    def __init__(self, blamed: dict[int, str]) -> None:
        super().__init__("; ".join(f"offset {o}: {why}" for o, why in sorted(blamed.items())))
        self.blamed = blamed


class AuthorizationError(KafkaError):
    """Kafka's authorizer refused an operation to this principal."""


class LauncherError(BorderExchangeError):
    """The local Kafka launcher cannot start or stop a cluster; the message says how to fix it."""


class StoreError(BorderExchangeError):
    """A border post's local store cannot be read or written."""


class AuditError(BorderExchangeError):
    """An audit replay cannot proceed (as opposed to finding violations, which it reports)."""


class NotPermittedError(ReasonedError[str]):
    """A feed copy its agreement did not permit; ``reason`` says which check failed."""


class LoginRefusal(StrEnum):
    """Machine-readable reason of a ``LoginRefused`` (the page shows one message for all)."""

    UNKNOWN = "UNKNOWN"
    WRONG_PASSWORD = "WRONG_PASSWORD"
    LOCKED = "LOCKED"
    DISABLED = "DISABLED"


class LoginRefused(ReasonedError[LoginRefusal]):
    """An officer's name and password do not open a session at the post."""

    def __init__(self, reason: LoginRefusal) -> None:
        super().__init__(f"login refused: {reason.value}", reason)
