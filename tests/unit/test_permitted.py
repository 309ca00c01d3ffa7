"""What a post checks of a feed copy: that its agreement permitted type, sections, handling."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from border_exchange.demo.sandbox import Sandbox, make_sandbox
from border_exchange.domain.agreements import AgreementSet
from border_exchange.domain.catalog import AlertType, HandlingCode
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.permitted import (
    AgreementBook,
    NotPermitted,
    check_permitted,
    parse_reference,
    reference_value,
)
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import redact, seal
from border_exchange.errors import NotPermittedError

NOW = datetime.now(UTC).replace(microsecond=0)

TEXT = f"""
version: permitted
agreements:
  - id: CAF-COD
    parties: [CAF, COD]
    status: active
    effective_from: {(NOW - timedelta(days=30)).isoformat()}
    effective_until: {(NOW + timedelta(days=30)).isoformat()}
    flows:
      - from: COD
        to: CAF
        types:
          WANTED_PERSON: {{sections: [identity, offence], max_handling: H2}}
  - id: SSD-CAF
    parties: [SSD, CAF]
    status: active
    effective_from: {(NOW - timedelta(days=30)).isoformat()}
    flows:
      - from: SSD
        to: CAF
        types:
          VEHICLE_NOTICE: {{sections: all, max_handling: H1}}
"""


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return make_sandbox(
        ["CAF", "COD", "SSD"], TEXT, start=NOW - timedelta(days=60), signers={"SSD-CAF": ["SSD"]}
    )


def _book(box: Sandbox, aset: AgreementSet | None = None) -> AgreementBook:
    return AgreementBook.of([aset or box.agreements], box.trust, "CAF")


def _copy(
    box: Sandbox,
    origin: str = "COD",
    alert_type: AlertType = AlertType.WANTED_PERSON,
    keep: tuple[str, ...] = ("identity", "offence"),
    **changes: object,
) -> Envelope:
    base = sample_alert(alert_type, origin=origin, alert_id=uuid.uuid4().hex)
    values = {**base.model_dump(), "expires_at": NOW + timedelta(days=90), **changes}
    alert = type(base).model_validate(values)
    envelope = seal(
        alert,
        signing_key=box.keys[origin],
        key_id=box.key_ids[origin],
        message_id=uuid.uuid4().hex,
        issued_at=NOW,
    )
    return redact(envelope, keep)


def _ref(box: Sandbox, agreement_id: str) -> bytes:
    return reference_value(agreement_id, box.agreements.by_id(agreement_id).content_digest())


def _refused(copy: Envelope, reference: bytes | None, book: AgreementBook) -> NotPermitted:
    with pytest.raises(NotPermittedError) as caught:
        check_permitted(copy.header, copy.present_sections, reference, book)
    return NotPermitted(caught.value.reason)


def test_a_copy_within_a_signed_agreement_passes(box: Sandbox) -> None:
    copy = _copy(box)
    check_permitted(copy.header, copy.present_sections, _ref(box, "CAF-COD"), _book(box))


def test_a_copy_naming_no_agreement_or_an_unknown_one_is_refused(box: Sandbox) -> None:
    copy = _copy(box)
    book = _book(box)
    assert _refused(copy, None, book) is NotPermitted.NO_AGREEMENT_REFERENCE
    assert _refused(copy, b"garbage", book) is NotPermitted.NO_AGREEMENT_REFERENCE
    other = reference_value("CAF-COD", "ab" * 32)
    assert _refused(copy, other, book) is NotPermitted.UNKNOWN_AGREEMENT


def test_a_copy_with_a_section_the_agreement_withholds_is_refused(box: Sandbox) -> None:
    copy = _copy(box, keep=("identity", "offence", "photo"))
    with pytest.raises(NotPermittedError, match="carries photo, which agreement CAF-COD"):
        check_permitted(copy.header, copy.present_sections, _ref(box, "CAF-COD"), _book(box))


def test_type_handling_direction_and_time_are_checked(box: Sandbox) -> None:
    book = _book(box)
    vehicle = _copy(box, alert_type=AlertType.VEHICLE_NOTICE, keep=("vehicle",))
    assert _refused(vehicle, _ref(box, "CAF-COD"), book) is NotPermitted.TYPE_NOT_PERMITTED
    secret = _copy(box, handling_code=HandlingCode.H3)
    assert _refused(secret, _ref(box, "CAF-COD"), book) is NotPermitted.HANDLING_NOT_PERMITTED
    ended_text = TEXT.replace(
        (NOW + timedelta(days=30)).isoformat(), (NOW - timedelta(days=1)).isoformat()
    )
    ended = make_sandbox(["CAF", "COD"], ended_text, start=NOW - timedelta(days=60))
    copy = _copy(ended)
    reference = reference_value("CAF-COD", ended.agreements.by_id("CAF-COD").content_digest())
    with pytest.raises(NotPermittedError, match="is not in force at") as caught:
        check_permitted(copy.header, copy.present_sections, reference, _book(ended))
    assert caught.value.reason == NotPermitted.AGREEMENT_NOT_IN_FORCE


def test_a_copy_under_an_agreement_signed_by_one_side_only_is_refused(box: Sandbox) -> None:
    copy = _copy(box, origin="SSD", alert_type=AlertType.VEHICLE_NOTICE, keep=("vehicle",))
    with pytest.raises(NotPermittedError, match="no signature of CAF") as caught:
        check_permitted(copy.header, copy.present_sections, _ref(box, "SSD-CAF"), _book(box))
    assert caught.value.reason == NotPermitted.AGREEMENT_NOT_SIGNED


def test_the_book_holds_only_agreements_of_its_service(box: Sandbox) -> None:
    book = AgreementBook.of([box.agreements], box.trust, "COD")
    assert {aid for aid, _ in book.entries} == {"CAF-COD"}


def test_references_read_back() -> None:
    digest = "cd" * 32
    assert parse_reference(reference_value("A-B", digest)) == ("A-B", digest)
    assert parse_reference(b"A-B short") is None
    assert parse_reference(None) is None
