"""How the demo tells its story: numbered steps, their timings, who received what and why."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from border_exchange.demo.alerts import DemoAlert
from border_exchange.domain.agreements import AgreementSet
from border_exchange.domain.audit_values import AuditEntry
from border_exchange.domain.catalog import SECTIONS, AlertType
from border_exchange.domain.consent import consents
from border_exchange.domain.trust import TrustStore
from border_exchange.services.gateway import Receipt

REASONS: Final = {
    "NO_AGREEMENT": "no agreement between the two services",
    "SUSPENDED": "the agreement is suspended",
    "TYPE_NOT_COVERED": "the agreement does not cover this alert type in this direction",
    "HANDLING_ABOVE_LIMIT": "the handling code is above the agreement's limit",
    "NOT_PREVIOUS_RECIPIENT": "a cancellation goes only to those who received the alert",
    "NO_EARLIER_VERSION": "a cancellation of an alert nobody received",
    "EXPIRED": "the agreement has ended",
    "NOT_YET_IN_FORCE": "the agreement has not started",
    "TERMINATED": "the agreement was terminated",
    "NOT_SIGNED": "both services have not signed the agreement: it is not in force",
}
"""What each denial reason means, for the legend under the table."""


@dataclass
class Narrator:
    """Prints numbered steps with what happened in each and how long it took."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def say(self, text: str = "", indent: int = 4) -> None:
        """Print ``text`` (each line indented)."""
        for line in text.splitlines() or [""]:
            print((" " * indent + line) if line else "", file=self.out, flush=True)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        """A numbered step: its title, what the block says, then its duration."""
        number = len(self.timings) + 1
        print(f"\n{number:2}. {title}", file=self.out, flush=True)
        started = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - started
            self.timings.append((title, took))
            self.say(f"({took:.1f} s)")


def short(alert_id: str) -> str:
    """The first eight characters of an alert id, for tables."""
    return alert_id[:8] + "…"


def type_name(alert_type: str) -> str:
    """``WANTED_PERSON`` as ``wanted person``."""
    return alert_type.lower().replace("_", " ")


def describe_agreements(aset: AgreementSet, trust: TrustStore) -> list[str]:
    lines = []
    signed = consents(aset, trust)
    for agreement in aset.agreements:
        consent = signed[agreement.id]
        by = " and ".join(consent.signed_by) or "nobody"
        missing = ", ".join(d.party for d in consent.missing)
        state = (
            f"signed by {by}"
            if consent.signed_by_both
            else f"signed by {by} only, not by {missing}: NOT IN FORCE"
        )
        lines.append(f"{agreement.id} ({agreement.status}; {state})")
        for flow in agreement.flows:
            for alert_type, terms in flow.types.items():
                everything = tuple(terms.sections) == SECTIONS[AlertType(alert_type)]
                sections = "all sections" if everything else ", ".join(terms.sections)
                lines.append(
                    f"  {flow.source:>10} -> {flow.to:<10} {type_name(alert_type)}: "
                    f"{sections}; up to {terms.max_handling}"
                )
    return lines


def outcomes_of(entry: AuditEntry) -> list[Mapping[str, Any]]:
    """The per-participant outcomes of a decision, the origin's own row left out."""
    origin = entry.record["origin"]
    return [o for o in entry.record["outcomes"] if o["participant"] != origin]


def describe_outcome(entry: AuditEntry, outcome: Mapping[str, Any]) -> str:
    """``delivered under COD-CAF-2026: identity, ... (photo withheld)`` or ``denied REASON``."""
    record = entry.record
    if not outcome["delivered"]:
        agreement = f" ({outcome['agreement_id']})" if outcome["agreement_id"] else ""
        return f"denied {outcome['reason']}{agreement}"
    if record["operation"] == "CANCEL":
        return "delivered (the cancellation: it received the alert before)"
    kept = list(outcome["sections"])
    order = SECTIONS[AlertType(record["alert_type"])]
    withheld = [s for s in order if s in record["sections"] and s not in kept]
    text = f"delivered under {outcome['agreement_id']}: {', '.join(kept)}"
    if withheld:
        text += f" ({', '.join(withheld)} withheld)"
    return text


def print_table(
    narrator: Narrator,
    alerts: Sequence[DemoAlert],
    receipts: Mapping[str, Receipt],
    decisions: Mapping[str, AuditEntry],
    cancel: Receipt,
) -> None:
    """Who received what, and why: per alert and version, each partner's outcome."""
    narrator.say("\nWho received what, and why (the router's decisions, from the audit trail)", 0)
    reasons: set[str] = set()
    rows: list[tuple[DemoAlert, Receipt]] = [(a, receipts[a.alert_id]) for a in alerts]
    rows += [(a, cancel) for a in alerts if a.alert_id == cancel.alert_id]
    for alert, receipt in rows:
        entry = decisions[receipt.message_id]
        what = "cancellation" if entry.record["operation"] == "CANCEL" else "v1"
        narrator.say(
            f"{alert.origin} {type_name(alert.alert.alert_type)} {short(alert.alert_id)} "
            f"{what}: {alert.summary}",
            2,
        )
        for outcome in outcomes_of(entry):
            narrator.say(f"{outcome['participant']:<10} {describe_outcome(entry, outcome)}", 6)
            if not outcome["delivered"]:
                reasons.add(str(outcome["reason"]))
    narrator.say("Reasons:", 2)
    for reason in sorted(reasons):
        narrator.say(f"{reason:<22} {REASONS.get(reason, reason)}", 6)
