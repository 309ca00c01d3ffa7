"""What a post checks of a feed copy: that the agreement it names permitted it.

The router puts on every feed copy it delivers under an agreement a ``bx-agreement``
header: the agreement id and its content digest. A post keeps an ``AgreementBook``
of the signed agreements that concern its service (from the agreements topic) and
``check_permitted`` refuses a copy whose agreement is unknown, not signed by both
parties, not in force at the alert's issue time, or does not let its type, handling
code or sections flow from the origin to this service. So a copy written into a feed
by anyone but the router acting on a signed agreement (an administrator, say) is
refused, however well its origin signed it.

A CANCEL is not checked against an agreement: it withdraws an alert from everyone
who received it, whatever the agreements say since, carries no section, and the
origin's signature alone says the origin withdrew it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from border_exchange.domain.agreements import Agreement, AgreementSet, AgreementStatus
from border_exchange.domain.catalog import SECTIONS, Operation
from border_exchange.domain.consent import Consent, consent_of
from border_exchange.domain.envelope import Header
from border_exchange.domain.times import iso
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import NotPermittedError

AGREEMENT_HEADER: Final = "bx-agreement"
"""The Kafka header of a feed copy naming the agreement it was delivered under."""


class NotPermitted(StrEnum):
    """Why a post refuses a feed copy that its agreement does not permit."""

    NO_AGREEMENT_REFERENCE = "NO_AGREEMENT_REFERENCE"
    UNKNOWN_AGREEMENT = "UNKNOWN_AGREEMENT"
    AGREEMENT_NOT_SIGNED = "AGREEMENT_NOT_SIGNED"
    AGREEMENT_NOT_IN_FORCE = "AGREEMENT_NOT_IN_FORCE"
    TYPE_NOT_PERMITTED = "TYPE_NOT_PERMITTED"
    HANDLING_NOT_PERMITTED = "HANDLING_NOT_PERMITTED"
    SECTION_WITHHELD = "SECTION_WITHHELD"


def reference_value(agreement_id: str, digest: str) -> bytes:
    """The ``bx-agreement`` header value: the agreement id and its content digest."""
    return f"{agreement_id} {digest}".encode("ascii")


def parse_reference(value: bytes | None) -> tuple[str, str] | None:
    """The (agreement id, content digest) of a header value; None when absent or malformed."""
    if value is None:
        return None
    try:
        agreement_id, digest = value.decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        return None
    if not agreement_id or len(digest) != 64:
        return None
    return agreement_id, digest


@dataclass(frozen=True)
class AgreementBook:
    """The signed agreements that concern one service, by (id, content digest)."""

    participant: str
    entries: Mapping[tuple[str, str], tuple[Agreement, Consent]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def of(cls, sets: Iterable[AgreementSet], trust: TrustStore, participant: str) -> AgreementBook:
        """The agreements of ``sets`` to which ``participant`` is a party, with their consent.

        An agreement's id and content digest name its terms; its signatures and statements
        may differ between sets: the latest set read wins for each.
        """
        entries: dict[tuple[str, str], tuple[Agreement, Consent]] = {}
        for aset in sets:
            for agreement in aset.agreements:
                if participant in agreement.parties:
                    consent = consent_of(agreement, trust)
                    entries[(agreement.id, consent.digest)] = (agreement, consent)
        return cls(participant, MappingProxyType(entries))

    def __contains__(self, reference: object) -> bool:
        return reference in self.entries

    def senders(self) -> frozenset[str]:
        """The partners with a flow to this service in an agreement not terminated: those
        whose feed its posts follow (a suspended agreement's feed still holds its alerts)."""
        return frozenset(
            flow.source
            for agreement, _ in self.entries.values()
            if agreement.status is not AgreementStatus.TERMINATED
            for flow in agreement.flows
            if flow.to == self.participant and flow.source != self.participant
        )


def _refuse(reason: NotPermitted, detail: str) -> NotPermittedError:
    return NotPermittedError(detail, reason.value)


def check_permitted(
    header: Header,
    present: Iterable[str],
    reference: bytes | None,
    book: AgreementBook,
) -> None:
    """Raise ``NotPermittedError`` unless the agreement ``reference`` names permitted this copy.

    ``present`` are the sections whose content the copy carries; the copy is bound for
    ``book.participant``.
    """
    if header.operation is Operation.CANCEL:
        return
    me = book.participant
    named = parse_reference(reference)
    if named is None:
        raise _refuse(
            NotPermitted.NO_AGREEMENT_REFERENCE,
            f"message {header.message_id} names no agreement it was delivered under",
        )
    agreement_id, digest = named
    found = book.entries.get(named)
    if found is None:
        raise _refuse(
            NotPermitted.UNKNOWN_AGREEMENT,
            f"agreement {agreement_id} ({digest[:12]}) is not a signed agreement of {me}",
        )
    agreement, consent = found
    if not consent.signed_by_both:
        raise _refuse(NotPermitted.AGREEMENT_NOT_SIGNED, consent.not_signed_detail())
    at = header.issued_at.astimezone(UTC)
    if consent.status is not AgreementStatus.ACTIVE or not agreement.in_force_window(at):
        raise _refuse(
            NotPermitted.AGREEMENT_NOT_IN_FORCE,
            f"agreement {agreement_id} is not in force at {iso(at)} "
            f"(status {consent.status}"
            + (f", {consent.status_detail}" if consent.status_detail else "")
            + ")",
        )
    flow = agreement.flow(header.origin, me)
    terms = None if flow is None else flow.types.get(header.alert_type.value)
    if terms is None:
        raise _refuse(
            NotPermitted.TYPE_NOT_PERMITTED,
            f"agreement {agreement_id} lets no {header.alert_type} flow from {header.origin} "
            f"to {me}",
        )
    if header.handling_code.rank > terms.max_handling.rank:
        raise _refuse(
            NotPermitted.HANDLING_NOT_PERMITTED,
            f"handling {header.handling_code} is above the limit {terms.max_handling} of "
            f"agreement {agreement_id}",
        )
    allowed = (
        set(SECTIONS[header.alert_type]) if isinstance(terms.sections, str) else set(terms.sections)
    )
    withheld = sorted(set(present) - allowed)
    if withheld:
        raise _refuse(
            NotPermitted.SECTION_WITHHELD,
            f"the copy carries {', '.join(withheld)}, which agreement {agreement_id} withholds "
            f"from {me}",
        )
