"""Section encryption benchmark: gateway sealing cost, router cost, post decrypt + verify rate.

Measures on this machine, without a broker:

(1) the gateway's cost of sealing one wanted-person alert (7 sections, every section for
    every recipient, plus the origin) for 1, 3 and 10 recipients, X25519 and the hybrid
    ML-KEM-768 + X25519, against signing it in clear;
(2) the router's per-message work (``domain.routing.route``: decode, verify the signature
    and every digest, decide, redact for 3 partners, encode the two redacted copies as the
    router does) on sealed records against records in clear: the router holds no key and
    decrypts nothing;
(3) a post's rate of verifying a feed copy and opening its 5 sections (UGA's copy,
    ``post.check_record``) against reading the same copy in clear.

Usage: python bench/bench_sealing.py [--seconds 3] [--messages 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from border_exchange.adapters.keyfiles import generate_encryption_key
from border_exchange.demo.sandbox import make_sandbox
from border_exchange.domain.catalog import SECTIONS, AlertType
from border_exchange.domain.consent import consents
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.naming import feed_topic, outbox_topic
from border_exchange.domain.policy import PolicyIndex
from border_exchange.domain.routing import Inbound, PartitionState, Routed, RoutingRules, route
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.section_seal import Recipient, RecipientPrivateKey
from border_exchange.domain.signing import seal
from border_exchange.domain.trust import EncryptionAlgorithm, EncryptionKey, TrustStore
from border_exchange.services.post import check_record

NOW = datetime.now(UTC)
PARTNERS = ("COD", "SSD", "UGA")
TEMPLATE = sample_alert(AlertType.WANTED_PERSON, origin="CAF", language="en")
TEMPLATE = type(TEMPLATE).model_validate(
    {**TEMPLATE.model_dump(), "expires_at": NOW + timedelta(days=30)}
)
_WITHOUT_PHOTO = "[identity, documents, description, offence, remarks, contact]"
_CORE = "[identity, documents, description, offence, contact]"
AGREEMENTS = "version: bench\nagreements:\n" + "".join(
    f"""  - id: CAF-{partner}
    parties: [CAF, {partner}]
    status: active
    effective_from: {(NOW - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    flows:
      - from: CAF
        to: {partner}
        types:
          WANTED_PERSON: {{sections: {sections}, max_handling: H3}}
"""
    for partner, sections in zip(PARTNERS, ("all", _WITHOUT_PHOTO, _CORE), strict=True)
)
"""COD gets every section, SSD all but the photo, UGA the core: one full copy, two redacted."""
BOX = make_sandbox(["CAF", *PARTNERS], AGREEMENTS)


def _key(owner: str, algorithm: EncryptionAlgorithm) -> tuple[EncryptionKey, RecipientPrivateKey]:
    private, raw = generate_encryption_key(f"{owner}-enc-{algorithm}", algorithm)
    public = EncryptionKey(
        owner, private.key_id, algorithm, raw, NOW - timedelta(days=1), NOW + timedelta(days=9)
    )
    return public, private


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls of ``work`` per second, the best of three runs of ``seconds / 3``."""
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            work()
            count += 1
        best = max(best, count / elapsed)
    return best


def _seal(recipients: dict[str, tuple[Recipient, ...]] | None) -> bytes:
    return _sealed(recipients)[1]


def _sealed(recipients: dict[str, tuple[Recipient, ...]] | None) -> tuple[bytes, bytes]:
    """(record key, value) of a new wanted-person alert, sealed for ``recipients`` or clear."""
    envelope = seal(
        TEMPLATE,
        signing_key=BOX.keys["CAF"],
        key_id=BOX.key_ids["CAF"],
        message_id=uuid.uuid4().hex,
        issued_at=NOW,
        alert_id=uuid.uuid4().hex,
        recipients=recipients,
    )
    return envelope.header.alert_id.encode(), encode_envelope(envelope)


def sealing(seconds: float) -> None:
    """(1) sealing cost per alert."""
    clear = rate(lambda: _seal(None), seconds)
    print(f"(1) sign in clear: {1e3 / clear:.2f} ms per alert ({clear:,.0f}/s)")
    own = _key("CAF", EncryptionAlgorithm.X25519)[0]
    for algorithm in EncryptionAlgorithm:
        for count in (1, 3, 10):
            keys = [_key(f"R{i:02d}", algorithm)[0] for i in range(count)]
            plan = {
                name: (Recipient(own, None), *(Recipient(k, "A") for k in keys))
                for name in SECTIONS[AlertType.WANTED_PERSON]
            }
            size = len(_seal(plan))
            sealed = rate(lambda plan=plan: _seal(plan), seconds)  # type: ignore[misc]
            print(
                f"    sealed for {count:2d} recipient(s) + origin, {algorithm}: "
                f"{1e3 / sealed:.2f} ms per alert ({sealed:,.0f}/s), "
                f"{size:,} bytes ({len(_seal(None)):,} in clear)"
            )


def _trust_with_keys() -> tuple[TrustStore, dict[str, RecipientPrivateKey]]:
    members, privates = {}, {}
    for pid, member in BOX.trust.participants.items():
        public, private = _key(pid, EncryptionAlgorithm.X25519)
        members[pid] = replace(member, encryption_keys=(public,))
        privates[pid] = private
    return replace(BOX.trust, participants=MappingProxyType(members)), privates


def routing_and_reading(seconds: float, messages: int) -> None:
    """(2) the router's work and (3) the post's, on sealed records against clear ones."""
    from border_exchange.domain.policy import PolicyInput
    from border_exchange.domain.recipients import SectionRecipients

    trust, privates = _trust_with_keys()
    index = PolicyIndex.build(BOX.agreements, trust.participants, consents(BOX.agreements, trust))
    recipients = SectionRecipients.of(BOX.agreements, trust)
    plan = recipients.plan(
        PolicyInput(
            "CAF", AlertType.WANTED_PERSON, TEMPLATE.handling_code, TEMPLATE.operation, "x"
        ),
        NOW,
    ).sections
    values = {
        "clear": [_sealed(None) for _ in range(messages)],
        "sealed": [_sealed(dict(plan)) for _ in range(messages)],
    }
    rates: dict[str, float] = {}
    copies: dict[str, bytes] = {}
    for kind, batch in values.items():
        runs = []
        for _ in range(3):
            state = PartitionState()
            start = time.perf_counter()
            for offset, (key, value) in enumerate(batch):
                result = route(
                    Inbound(outbox_topic("CAF"), 0, offset, key, value),
                    expected_partition=None,
                    trust=trust,
                    policy=index,
                    now=NOW,
                    rules=RoutingRules(),
                    state=state,
                )
                assert isinstance(result, Routed), result
                encoded: dict[int, bytes] = {}
                for _, copy in result.copies:  # as the router: the origin's bytes when whole
                    if copy is not result.envelope and id(copy) not in encoded:
                        encoded[id(copy)] = encode_envelope(copy)
            runs.append(len(batch) / (time.perf_counter() - start))
        rates[kind] = max(runs)
        routed = route(
            Inbound(outbox_topic("CAF"), 0, 0, *batch[0]),
            expected_partition=None,
            trust=trust,
            policy=index,
            now=NOW,
            rules=RoutingRules(),
            state=PartitionState(),
        )
        assert isinstance(routed, Routed), routed
        copies[kind] = encode_envelope(routed.copies[-1][1])  # UGA's: the core sections
        print(
            f"(2) router route + 3 copies, {kind}: {rates[kind]:,.0f} msg/s "
            f"(best of 3 over {len(batch):,} distinct messages, "
            f"{statistics.mean(len(v) for _, v in batch):,.0f} bytes each)"
        )
    print(f"    ratio sealed / clear: {rates['sealed'] / rates['clear']:.2f} (goal >= 0.90)")
    topic = feed_topic("UGA", "CAF")
    clear = rate(lambda: check_record(topic, copies["clear"], trust, "UGA"), seconds)
    opened = rate(
        lambda: check_record(topic, copies["sealed"], trust, "UGA", None, None, [privates["UGA"]]),
        seconds,
    )
    print(f"(3) post verify + read 5 sections in clear: {clear:,.0f}/s")
    print(f"    post verify + open 5 sealed sections: {opened:,.0f}/s (ratio {opened / clear:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    sealing(args.seconds)
    routing_and_reading(args.seconds, args.messages)


if __name__ == "__main__":
    main()
