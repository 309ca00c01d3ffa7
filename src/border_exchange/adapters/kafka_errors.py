"""What a failed send means: the record is at fault, the producer is, or the cluster is.

A send to a transaction fails for one of three kinds of reasons. Some blame the
record and come back however often it is sent (too large for the topic, invalid for
it, not authorized for this principal): retrying them would stall the partition, so
the router quarantines the record instead. Some leave the producer unusable
(a sequence number out of order, an unknown producer id): only a new producer, fenced
under the same transactional id, may go on. The rest may pass if tried again later.
A producer fenced by another owner is none of these: that router must stop routing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from aiokafka import errors as aioerrors


class InvalidRecordError(aioerrors.BrokerResponseError):  # type: ignore[misc]  # untyped base
    """INVALID_RECORD: the broker refuses a record its topic cannot hold (say a keyless
    record in a compacted topic). aiokafka 0.14 has no class for the code and reports it
    as UnknownError; registered here, the code survives to be classified."""

    errno = 87
    message = "INVALID_RECORD"
    description = "This record has failed the validation on the broker and hence was rejected."


aioerrors.kafka_errors.setdefault(InvalidRecordError.errno, InvalidRecordError)


class SendFault(StrEnum):
    """Who is at fault for a failed send."""

    RECORD = "RECORD"
    """The record: sending it again fails again."""
    PRODUCER = "PRODUCER"
    """The producer's sequence state: a new producer must take over."""
    FENCED = "FENCED"
    """Another producer owns the transactional id now."""
    TRANSIENT = "TRANSIENT"
    """The cluster, for now: try again after a pause."""


_RECORD_CODES: Final = frozenset(
    {
        2,  # CORRUPT_MESSAGE
        10,  # MESSAGE_TOO_LARGE
        18,  # RECORD_LIST_TOO_LARGE
        29,  # TOPIC_AUTHORIZATION_FAILED
        32,  # INVALID_TIMESTAMP
        44,  # POLICY_VIOLATION
        87,  # INVALID_RECORD
    }
)
_PRODUCER_CODES: Final = frozenset(
    {
        45,  # OUT_OF_ORDER_SEQUENCE_NUMBER
        48,  # INVALID_TXN_STATE
        59,  # UNKNOWN_PRODUCER_ID
    }
)


def send_fault(error: BaseException) -> SendFault:
    """Who is at fault for ``error``, raised by a send or set on its future."""
    if isinstance(error, aioerrors.ProducerFenced | aioerrors.InvalidProducerEpoch):
        return SendFault.FENCED
    if isinstance(error, aioerrors.RecordTooLargeError):  # refused before it was sent
        return SendFault.RECORD
    code = getattr(error, "errno", None) if isinstance(error, aioerrors.KafkaError) else None
    if code in _RECORD_CODES:
        return SendFault.RECORD
    if code in _PRODUCER_CODES:
        return SendFault.PRODUCER
    return SendFault.TRANSIENT


def describe(error: BaseException) -> str:
    """``error`` for a person: its Kafka code name when it has one, and its message."""
    name = getattr(error, "message", None) if isinstance(error, aioerrors.KafkaError) else None
    text = str(error)
    label = name if isinstance(name, str) else type(error).__name__
    return f"{label}: {text}" if text and text != label else label
