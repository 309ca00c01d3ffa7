"""The router on a real broker: permitted partners get permitted sections, the rest is refused."""

from __future__ import annotations

import pytest

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.signing import verify_trusted
from tests.conftest import KafkaCluster
from tests.exchange import make_exchange, running

pytestmark = pytest.mark.kafka

AGREEMENTS = """
version: "router-test"
agreements:
  - id: A-B
    parties: [P0, P1]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: P0
        to: P1
        types:
          WANTED_PERSON: {sections: [identity, offence, contact], max_handling: H2}
      - from: P1
        to: P0
        types:
          VEHICLE_NOTICE: {sections: all, max_handling: H2}
  - id: A-C
    parties: [P0, P2]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: P0
        to: P2
        types:
          WANTED_PERSON: {sections: all, max_handling: H1}
"""


async def test_a_withheld_section_is_absent_and_the_copy_still_verifies(
    kafka: KafkaCluster,
) -> None:
    ex = await make_exchange(kafka, 3, AGREEMENTS)
    a, b, c = ex.ids
    envelope = ex.seal(ex.alert(AlertType.WANTED_PERSON, a, handling_code="H1"))
    async with running(ex.router()):
        await ex.publish(envelope)
        to_b = await ex.feed(b, a, expect=1)
        to_c = await ex.feed(c, a, expect=1)

    assert [e.header.message_id for e in to_b] == [envelope.header.message_id]
    copy = to_b[0]
    assert copy.present_sections == {"identity", "offence", "contact"}
    assert {"photo", "documents"} <= set(copy.section_names) - copy.present_sections
    verify_trusted(copy, ex.sandbox.trust)  # the origin's signature survives redaction
    assert to_c[0].present_sections == envelope.present_sections
    verify_trusted(to_c[0], ex.sandbox.trust)
    assert await ex.feed(a, b) == []  # nothing flows back to the origin
