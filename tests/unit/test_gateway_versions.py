"""The gateway's checks before publishing: origin, versions from its history, cancels."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nacl.signing import SigningKey

from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.alerts import parse_alert
from border_exchange.domain.catalog import AlertType, Operation, ParticipantKind
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.samples import sample_alert, sample_alert_data
from border_exchange.domain.signing import seal
from border_exchange.domain.trust import Participant, PublicKey, TrustStore
from border_exchange.errors import KeyNotValidError, ValidationError
from border_exchange.services.gateway import Gateway
from tests import clock

KEY = SigningKey(bytes(range(32)))
NOW = clock.now()
"""The gateway's clock: the run's (the samples it publishes are dated from it too)."""


def gateway(trust: TrustStore | None = None) -> Gateway:
    settings = KafkaSettings("127.0.0.1:1")
    return Gateway(settings, "CAF", KEY, "CAF-1", trust=trust, clock=lambda: NOW)


def published(version: int, operation: Operation = Operation.CREATE) -> bytes:
    alert = sample_alert(AlertType.VEHICLE_NOTICE).model_copy(
        update={"version": version, "operation": operation}
    )
    envelope = seal(
        alert, signing_key=KEY, key_id="CAF-1", message_id=f"m{version}", issued_at=NOW,
        alert_id="vn-1",
    )  # fmt: skip
    return encode_envelope(envelope)


def test_an_alert_with_an_existing_id_is_the_next_version_of_it() -> None:
    gw = gateway()
    gw.load_history([published(1), published(2, Operation.UPDATE), None, b"not avro"])
    known = gw.history("vn-1")
    assert known is not None
    assert known.version == 2
    update = sample_alert(AlertType.VEHICLE_NOTICE, alert_id="vn-1")
    new = sample_alert(AlertType.VEHICLE_NOTICE)
    assert gw.check([update, update, new]) == [(), (), ()]


def test_check_names_each_failing_field() -> None:
    gw = gateway()
    gw.load_history([published(1)])
    foreign = sample_alert(AlertType.VEHICLE_NOTICE, origin="SSD")
    wrong_type = sample_alert(AlertType.WANTED_PERSON, alert_id="vn-1")
    data = sample_alert_data(AlertType.VEHICLE_NOTICE, alert_id="vn-9")
    data |= {"operation": "UPDATE", "version": 2}
    unknown_update = parse_alert(data)
    problems = gw.check([foreign, wrong_type, unknown_update])
    assert problems[0] == ("origin: must be CAF, the participant of this gateway",)
    assert problems[1] == ("alert_type: alert vn-1 is a VEHICLE_NOTICE",)
    assert problems[2] == ("alert_id: vn-9 was never published by CAF",)


async def test_a_batch_with_one_invalid_alert_publishes_nothing() -> None:
    gw = gateway()
    with pytest.raises(ValidationError) as caught:
        await gw.publish_batch(
            [
                sample_alert(AlertType.VEHICLE_NOTICE),
                sample_alert(AlertType.VEHICLE_NOTICE, origin="SSD"),
            ]
        )
    assert caught.value.problems == ("[1] origin: must be CAF, the participant of this gateway",)


def test_a_cancelled_alert_cannot_be_updated_or_cancelled_again() -> None:
    gw = gateway()
    gw.load_history([published(1), published(2, Operation.UPDATE)])
    data = sample_alert_data(AlertType.VEHICLE_NOTICE, alert_id="vn-1")
    cancel = {key: value for key, value in data.items() if key not in ("sections",)} | {
        "operation": "CANCEL",
        "version": 3,
        "cancel_reason": "vehicle recovered",
    }
    update = sample_alert(AlertType.VEHICLE_NOTICE, alert_id="vn-1")
    assert gw.check([parse_alert(cancel), update]) == [
        (),
        ("alert_id: alert vn-1 was cancelled at version 3",),
    ]


async def test_cancelling_an_unknown_alert_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="alert_id: nope was never published by CAF"):
        await gateway().cancel("nope", "mistake")


def test_the_key_must_be_the_participants_key_in_the_trust_store() -> None:
    other = SigningKey(bytes(range(1, 33)))
    key = PublicKey(
        "CAF", "CAF-1", bytes(other.verify_key), NOW - timedelta(days=1), NOW + timedelta(days=1)
    )
    caf = Participant("CAF", "Police", ParticipantKind.NATIONAL_SERVICE, "active", (), (key,))
    with pytest.raises(KeyNotValidError, match="does not match key CAF-1"):
        gateway(TrustStore({"CAF": caf}))._check_key()
