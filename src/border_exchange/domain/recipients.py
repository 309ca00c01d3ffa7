"""Who each section of an alert is sealed for: the signed agreements in force and the keys.

The origin's gateway asks the same policy the router applies (``domain.policy``, with the
parties' signatures, ``domain.consent``) which participants an alert may reach and with
which sections, at its issue time; each such participant's encryption key that counts then
(``TrustStore.encryption_key_for``) is a recipient of exactly those sections, under the
agreement that permits them. The origin's own current encryption key, when it has one, is
a recipient of every section (it wrote them; it can read its own outbox). Nobody else is.
A permitted participant without a valid encryption key gets no wrapped key: it is named
among ``unreachable`` and cannot read the sections, which the gateway logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from border_exchange.domain.agreements import AgreementSet
from border_exchange.domain.catalog import SECTIONS
from border_exchange.domain.consent import consents
from border_exchange.domain.policy import Deliver, PolicyIndex, PolicyInput, decide
from border_exchange.domain.section_seal import Recipient
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import KeyNotValidError


@dataclass(frozen=True, slots=True)
class RecipientPlan:
    """The recipients of every section of one alert, and the permitted ones without a key."""

    sections: Mapping[str, tuple[Recipient, ...]]
    unreachable: tuple[tuple[str, str], ...]
    """(participant, why) of each permitted participant no key could be wrapped to."""


@dataclass(frozen=True)
class SectionRecipients:
    """The agreement set in force, compiled, with the trust store its keys come from."""

    trust: TrustStore
    index: PolicyIndex
    aset: AgreementSet

    @classmethod
    def of(cls, aset: AgreementSet, trust: TrustStore) -> SectionRecipients:
        """Compile ``aset`` as the router does: only agreements both parties signed count."""
        index = PolicyIndex.build(aset, trust.participants, consents(aset, trust))
        return cls(trust, index, aset)

    def with_trust(self, trust: TrustStore) -> SectionRecipients:
        """The same agreement set under ``trust`` (a trust store reloaded: keys rotated,
        revoked, signatures checked again)."""
        return SectionRecipients.of(self.aset, trust)

    def plan(self, alert: PolicyInput, at: datetime) -> RecipientPlan:
        """Who may read each section of ``alert`` issued at ``at``."""
        sections: dict[str, list[Recipient]] = {}
        unreachable: list[tuple[str, str]] = []
        try:
            own = Recipient(self.trust.encryption_key_for(alert.origin, at), None)
        except KeyNotValidError:
            own = None
        for participant, outcome in decide(alert, at, self.index).outcomes.items():
            if not isinstance(outcome, Deliver) or not outcome.sections:
                continue
            try:
                key = self.trust.encryption_key_for(participant, at)
            except KeyNotValidError as exc:
                unreachable.append((participant, str(exc)))
                continue
            for name in outcome.sections:
                sections.setdefault(name, []).append(Recipient(key, outcome.agreement_id))
        if own is not None:
            for name in SECTIONS[alert.alert_type]:
                sections.setdefault(name, []).insert(0, own)
        return RecipientPlan(
            MappingProxyType({name: tuple(found) for name, found in sections.items()}),
            tuple(unreachable),
        )
