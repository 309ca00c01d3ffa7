"""Policy decisions per second: 50 participants, 200 agreements, one core.

Run: .venv/bin/python bench/bench_policy.py

A decision is one ``decide`` call, which returns the outcome for all 50
participants (what the router needs per message); the per-participant outcome
rate is reported too. The index is built once for the agreement set, as the
router does on each new version.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import yaml

from border_exchange.domain.agreements import parse_agreement_set
from border_exchange.domain.catalog import SECTIONS, AlertType, HandlingCode, Operation
from border_exchange.domain.policy import PolicyIndex, PolicyInput, decide

PARTICIPANTS = 50
AGREEMENTS = 200
DECISIONS = 200_000


def participant_ids(count: int) -> list[str]:
    """``count`` well-formed participant ids: AAA, AAB, ..."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [f"Q{letters[i // 26]}{letters[i % 26]}" for i in range(count)]


def agreement_document(rng: random.Random, names: list[str], count: int) -> str:
    """A YAML agreement set of ``count`` agreements over random pairs, successive years per pair."""
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    rng.shuffle(pairs)
    agreements = []
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(count):
        first, second = pairs[index % (len(pairs) // 2)]  # some pairs get successive agreements
        year = index // (len(pairs) // 2)
        start = base + timedelta(days=365 * year + rng.randrange(0, 30))
        flows = []
        for source, target in ((first, second), (second, first)):
            if rng.random() < 0.2:
                continue  # this direction: nothing flows
            types = {}
            for alert_type in AlertType:
                if rng.random() < 0.7:
                    sections = SECTIONS[alert_type]
                    kept = [s for s in sections if rng.random() < 0.7] or [sections[0]]
                    types[alert_type.value] = {
                        "sections": kept,
                        "max_handling": rng.choice(list(HandlingCode)).value,
                    }
            if types:
                flows.append({"from": source, "to": target, "types": types})
        agreements.append(
            {
                "id": f"AG-{index:04d}",
                "parties": [first, second],
                "status": rng.choice(["active"] * 8 + ["suspended", "terminated"]),
                "effective_from": start.isoformat(),
                "effective_until": (start + timedelta(days=360)).isoformat(),
                "flows": flows,
            }
        )
    return yaml.safe_dump({"version": "bench", "agreements": agreements})


def main() -> None:
    """Build the index once, then time ``decide`` on a mix of creates, updates and cancels."""
    rng = random.Random(7)
    names = participant_ids(PARTICIPANTS)
    aset = parse_agreement_set(agreement_document(rng, names, AGREEMENTS))

    started = time.perf_counter()
    index = PolicyIndex.build(aset, names)
    build_seconds = time.perf_counter() - started

    start = datetime(2025, 12, 1, tzinfo=UTC)
    operations = [Operation.CREATE] * 8 + [Operation.UPDATE, Operation.CANCEL]
    inputs = [
        (
            PolicyInput(
                origin=rng.choice(names),
                alert_type=rng.choice(list(AlertType)),
                handling_code=rng.choice(list(HandlingCode)),
                operation=rng.choice(operations),
                alert_id=f"alert-{n}",
            ),
            start + timedelta(minutes=rng.randrange(0, 60 * 24 * 400)),
            frozenset(rng.sample(names, 3)) if rng.random() < 0.5 else frozenset(),
        )
        for n in range(10_000)
    ]
    print(f"agreement set: {len(aset.agreements)} agreements, {PARTICIPANTS} participants")
    print(f"index build: {build_seconds * 1000:.0f} ms")
    seconds, outcomes = _timed(inputs, index)
    print(
        f"decisions, mixed: {DECISIONS / seconds:,.0f} per second "
        f"({DECISIONS} decide calls in {seconds:.2f} s; 80% create, 10% update, 10% cancel, "
        "half with a 3-recipient history)"
    )
    print(f"per-participant outcomes, mixed: {outcomes / seconds:,.0f} per second")
    for operation in Operation:
        only = [
            (replace(alert, operation=operation), at, frozenset(rng.sample(names, 3)))
            for alert, at, _ in inputs
        ]
        seconds, _ = _timed(only, index)
        print(
            f"decisions, {operation} with a 3-recipient history: "
            f"{DECISIONS / seconds:,.0f} per second"
        )


def _timed(
    inputs: list[tuple[PolicyInput, datetime, frozenset[str]]], index: PolicyIndex
) -> tuple[float, int]:
    """Seconds for DECISIONS decide calls over ``inputs``, and the outcomes they returned."""
    outcomes = 0
    started = time.perf_counter()
    for n in range(DECISIONS):
        alert, at, history = inputs[n % len(inputs)]
        outcomes += len(decide(alert, at, index, history).outcomes)
    return time.perf_counter() - started, outcomes


if __name__ == "__main__":
    main()
