"""Group commit on a real broker: concurrent requests share one outbox transaction, an
invalid one fails alone, and an Idempotency-Key still means one publish."""

from __future__ import annotations

import asyncio

import pytest

from border_exchange.domain.alerts import parse_alert
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.samples import sample_alert_data
from border_exchange.errors import ValidationError
from border_exchange.services.gateway import Cancellation, Receipt
from border_exchange.services.group_commit import GroupCommit
from tests.kafka.test_gateway import outbox
from tests.kafka.test_gateway_http import Served, assert_problem
from tests.kafka.test_gateway_http import served as served  # the fixture

pytestmark = pytest.mark.kafka


async def committed(served: Served, count: int) -> list[Envelope]:
    """The outbox once it holds ``count`` messages (commit markers follow the commit's
    answer by a moment), or as it is after 30 s."""
    messages = await outbox(served.kafka, served.origin)
    for _ in range(60):
        if len(messages) >= count:
            break
        await asyncio.sleep(0.5)
        messages = await outbox(served.kafka, served.origin)
    return messages


async def test_concurrent_publishes_commit_together_and_an_invalid_one_fails_alone(
    served: Served,
) -> None:
    origin = served.origin
    withdrawn = await served.gateway.publish(
        parse_alert(sample_alert_data(AlertType.VEHICLE_NOTICE, origin=origin))
    )
    await served.gateway.cancel(withdrawn.alert_id, "recovered")
    before = len(await committed(served, 2))  # the create and its cancel
    sizes: list[int] = []
    group = GroupCommit(served.gateway, on_group=sizes.append)
    fresh = [
        parse_alert(
            sample_alert_data(AlertType.VEHICLE_NOTICE, origin=origin) | {"alert_id": f"VN-{i}"}
        )
        for i in range(4)
    ]
    update_of_cancelled = parse_alert(
        sample_alert_data(AlertType.VEHICLE_NOTICE, origin=origin)
        | {"alert_id": withdrawn.alert_id}
    )
    requests = [fresh[0], fresh[1], update_of_cancelled, fresh[2], fresh[3]]
    outcomes = await asyncio.gather(*(group.publish(r) for r in requests), return_exceptions=True)

    assert sizes == [5]  # one group, one transaction
    refused = outcomes[2]
    assert isinstance(refused, ValidationError)
    assert "was cancelled" in " ".join(refused.problems)
    receipts = [o for o in outcomes if isinstance(o, Receipt)]
    assert [r.alert_id for r in receipts] == [a.alert_id for a in fresh]
    messages = (await committed(served, before + 4))[before:]
    assert [m.header.message_id for m in messages] == [r.message_id for r in receipts]
    # and the group's members are in the gateway's history: a cancel in a group works
    cancelled = await group.publish(Cancellation(fresh[0].alert_id or "", "found"))
    assert cancelled.version == 2


async def test_concurrent_posts_with_one_key_publish_once_and_neighbours_are_not_lost(
    served: Served,
) -> None:
    origin = served.origin
    withdrawn = await served.post(
        "/alerts", sample_alert_data(AlertType.VEHICLE_NOTICE, origin=origin)
    )
    alert_id = withdrawn.json()["alert_id"]
    await served.post(f"/alerts/{alert_id}/cancel", {"reason": "recovered"})
    before = len(await committed(served, 2))  # the create and its cancel

    keyed = sample_alert_data(AlertType.WANTED_PERSON, origin=origin)
    bodies = [
        ("/alerts", sample_alert_data(AlertType.BORDER_INCIDENT, origin=origin), {}),
        ("/alerts", keyed, {"Idempotency-Key": "case-88"}),
        (
            "/alerts",
            sample_alert_data(AlertType.VEHICLE_NOTICE, origin=origin) | {"alert_id": alert_id},
            {},
        ),
        ("/alerts", keyed, {"Idempotency-Key": "case-88"}),
        ("/alerts", sample_alert_data(AlertType.VEHICLE_NOTICE, origin=origin), {}),
    ]
    answers = await asyncio.gather(*(served.post(p, b, **h) for p, b, h in bodies))

    assert answers[0].status_code == answers[4].status_code == 202
    assert_problem(answers[2], 422, "was cancelled")
    one, other = answers[1], answers[3]
    assert sorted([one.status_code, other.status_code]) in ([202, 202], [202, 409])
    if one.status_code == other.status_code == 202:
        assert one.json() == other.json()  # the replay of the first answer
    accepted = {a.json()["message_id"] for a in answers if a.status_code == 202}
    assert len(accepted) == 3
    published = [m.header.message_id for m in await committed(served, before + 3)][before:]
    assert sorted(published) == sorted(accepted)
    retried = await served.post("/alerts", keyed, **{"Idempotency-Key": "case-88"})
    assert retried.json()["message_id"] in accepted
    assert await served.published() == before + 3
