"""Who is at fault for a failed send, and what a transaction's failed sends blame."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import errors as aioerrors

from border_exchange.adapters.kafka_errors import (
    InvalidRecordError,
    SendFault,
    describe,
    send_fault,
)
from border_exchange.errors import UndeliverableError
from border_exchange.services.router import _acknowledged, _Output, _Sent


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (aioerrors.MessageSizeTooLargeError(), SendFault.RECORD),
        (aioerrors.RecordTooLargeError(), SendFault.RECORD),
        (aioerrors.CorruptRecordException(), SendFault.RECORD),
        (aioerrors.TopicAuthorizationFailedError("bx.A.from.B"), SendFault.RECORD),
        (aioerrors.for_code(87)(), SendFault.RECORD),
        (aioerrors.OutOfOrderSequenceNumber(), SendFault.PRODUCER),
        (aioerrors.UnknownProducerId(), SendFault.PRODUCER),
        (aioerrors.ProducerFenced(), SendFault.FENCED),
        (aioerrors.NotEnoughReplicasError(), SendFault.TRANSIENT),
        (aioerrors.KafkaTimeoutError(), SendFault.TRANSIENT),
        (aioerrors.KafkaConnectionError(), SendFault.TRANSIENT),
    ],
)
def test_each_error_has_the_party_at_fault(error: BaseException, fault: SendFault) -> None:
    assert send_fault(error) is fault


def test_invalid_record_keeps_its_code_and_is_named() -> None:
    assert aioerrors.for_code(87) is InvalidRecordError
    assert describe(aioerrors.MessageSizeTooLargeError()).startswith("MESSAGE_SIZE_TOO_LARGE")


def _sent(error: BaseException | None, *outputs: _Output) -> _Sent:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
    return _Sent(future, outputs)


def _copy(offset: int) -> _Output:
    return _Output("bx.B.from.A", b"v", b"k", 0, None, offset, copy=True)


def _audit(offset: int | None) -> _Output:
    return _Output("bx.hub.audit.A", b"a", b"c", 0, None, offset)


async def test_every_send_acknowledged_raises_nothing() -> None:
    await _acknowledged([_sent(None, _copy(1)), _sent(None, _audit(1))])


async def test_a_refused_copy_blames_its_records_and_nothing_else() -> None:
    sent = [
        _sent(None, _copy(1)),
        _sent(aioerrors.MessageSizeTooLargeError(), _copy(2), _copy(3)),
        # what follows on the same partition fails on the spent sequence numbers
        _sent(aioerrors.OutOfOrderSequenceNumber(), _copy(4)),
        _sent(None, _audit(2), _audit(3), _audit(4)),
    ]
    with pytest.raises(UndeliverableError) as refused:
        await _acknowledged(sent)
    assert sorted(refused.value.blamed) == [2, 3]
    assert "MESSAGE_SIZE_TOO_LARGE" in refused.value.blamed[2]
    assert "bx.B.from.A" in refused.value.blamed[2]


async def test_a_refused_audit_record_or_a_transient_failure_blames_no_record() -> None:
    with pytest.raises(aioerrors.MessageSizeTooLargeError):
        await _acknowledged(
            [_sent(None, _copy(1)), _sent(aioerrors.MessageSizeTooLargeError(), _audit(None))]
        )
    with pytest.raises(aioerrors.NotEnoughReplicasError):
        await _acknowledged([_sent(aioerrors.NotEnoughReplicasError(), _copy(1))])


async def test_being_fenced_wins_over_any_other_failure() -> None:
    sent = [
        _sent(aioerrors.MessageSizeTooLargeError(), _copy(1)),
        _sent(aioerrors.ProducerFenced(), _copy(2)),
    ]
    with pytest.raises(aioerrors.ProducerFenced):
        await _acknowledged(sent)
