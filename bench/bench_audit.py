"""Audit replay rate with full verification, against the bare Ed25519 verify rate of the same run.

Run: .venv/bin/python bench/bench_audit.py [N]

Builds N routed messages in memory as an honest router leaves them (sealed outbox
copy, one DECISION record each in one hash chain with a checkpoint every 1,000,
redacted copies in two partner feeds), then times ``Replay.verdict`` over them:
chain hashes, checkpoints, one audit per outbox record, re-evaluation of every
decision under its recorded agreement set, the feed copies matched to deliveries,
and the origin signature.

The rate counts records replayed, every Kafka record the verdict reads and checks:
audit, outbox and feed records, as ``audit replay``'s progress line counts them. The
goal is 0.7 of the bare verify rate. The stricter rate per outbox message (its audit
record and feed copies included) is printed beside it. Each message costs one Ed25519
verification: its feed copies share the outbox copy's signing input, so they are
compared byte for byte with it and their present sections checked against the signed
digests (see ``docs/audit.md``); the verifications run in batches on a second thread.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.test_audit_verify import RoutedWorld  # the honest router of the tests

from border_exchange.interpreter import tuned_for_replay

GOAL = 0.7


def bare_verify_rate(count: int = 20_000) -> float:
    """Ed25519 verifications per second with PyNaCl over a 600-byte message."""
    key = SigningKey(bytes(32))
    message = bytes(600)
    signature = key.sign(message).signature
    verify = key.verify_key.verify
    start = time.perf_counter()
    for _ in range(count):
        verify(message, signature)
    return count / (time.perf_counter() - start)


def main(messages: int = 20_000) -> None:
    """Build the routed world, replay it three times, print the best rate and the ratio."""
    world = RoutedWorld()
    started = time.perf_counter()
    for index in range(messages):
        world.route(world.seal())
        if index % 1_000 == 999:
            world.checkpoint()
    print(f"built {messages} routed messages in {time.perf_counter() - started:.1f} s")
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        with tuned_for_replay():  # as ``audit replay`` runs it
            verdict = world.replay()
        best = max(best, messages / (time.perf_counter() - start))
        assert verdict.clean, verdict.violations[:3]
    bare = bare_verify_rate()
    stats = verdict.stats
    records = stats.audit_records + stats.outbox_records + stats.feed_records
    per_message = records / messages
    print(
        f"records replayed per message: {per_message:.2f} (audit {stats.audit_records}, "
        f"outbox {stats.outbox_records}, feed {stats.feed_records})"
    )
    print(
        f"signature verifications per message: {stats.signatures_verified / messages:.2f} "
        f"(feed copies compared to the verified outbox copy: {stats.copies_checked})"
    )
    print(f"replay with full verification: {best * per_message:,.0f} records/s")
    print(f"  per outbox message:          {best:,.0f} messages/s")
    print(f"bare PyNaCl verify:            {bare:,.0f} verifications/s")
    print(f"messages / bare verify: {best / bare:.2f}")
    ratio = best * per_message / bare
    print(f"ratio: {ratio:.2f} (goal >= {GOAL}) {'OK' if ratio >= GOAL else 'BELOW GOAL'}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
