"""A self-contained exchange for the demo, the tests and the benchmarks.

It makes fresh Ed25519 keys for a set of participants and the hub, the trust store
that lists them, and an agreement set; and it can write them as the files each
component loads (trust store YAML, encrypted key files, agreements YAML). The trust
store it writes is governed (``domain.trust_governance``): serial 1, valid as long as
the keys, each entry signed by its participant, approved by every participant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from nacl.signing import SigningKey

from border_exchange.adapters.keyfiles import (
    generate_encryption_key,
    write_encryption_key,
    write_private_key,
)
from border_exchange.domain.agreements import AgreementSet, add_signed, parse_agreement_set
from border_exchange.domain.catalog import ParticipantKind
from border_exchange.domain.consent import sign_agreement
from border_exchange.domain.section_seal import RecipientPrivateKey
from border_exchange.domain.trust import (
    HUB,
    EncryptionAlgorithm,
    EncryptionKey,
    Hub,
    Participant,
    PublicKey,
    TrustStore,
    encryption_key_entry,
    key_entry,
    parse_trust_store,
    post_owner,
)
from border_exchange.domain.trust_governance import (
    GovernedStore,
    governance_document,
    governed,
)

NAMES: Mapping[str, str] = {
    "CAF": "Police nationale centrafricaine",
    "COD": "Police nationale congolaise",
    "SSD": "South Sudan National Police Service",
    "UGA": "Uganda Police Force",
    "CMR": "Police nationale du Cameroun",
    "TCD": "Police nationale tchadienne",
    "UN-MINUSCA": "UN Police, MINUSCA",
    "UN-MONUSCO": "UN Police, MONUSCO",
    "UN-UNMISS": "UN Police, UNMISS",
}


@dataclass(frozen=True)
class Sandbox:
    """Participants with their private keys, the hub key, the trust store and agreements.

    ``keys`` and ``key_ids`` hold, besides each participant's and the hub's, each border
    post's own key (which signs hit reports) under ``<participant>.post.<post>``.
    """

    trust: TrustStore
    keys: Mapping[str, SigningKey]
    key_ids: Mapping[str, str]
    agreements_text: str
    agreements: AgreementSet
    encryption_keys: Mapping[str, RecipientPrivateKey] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Each participant's private encryption key, when the sandbox was made with them."""
    start: datetime = field(default_factory=lambda: default_start())
    """When its keys, agreements and governed trust store start to count."""

    @property
    def hub_key(self) -> SigningKey:
        """The hub's signing key (audit chain checkpoints)."""
        return self.keys[HUB]

    def signer(self, participant: str) -> tuple[str, SigningKey]:
        """The key id and private key ``participant`` signs with."""
        return self.key_ids[participant], self.keys[participant]

    def trust_yaml(
        self,
        trust: TrustStore | None = None,
        *,
        serial: int = 1,
        approvers: Sequence[str] | None = None,
        valid_until: datetime | None = None,
    ) -> str:
        """The governed trust store document of ``trust`` (default: the sandbox's): each
        entry signed by its participant, approved by ``approvers`` (default: every
        participant), valid from the sandbox's start until ``valid_until`` (default: as
        long as its keys)."""
        store = self.trust if trust is None else trust
        document = governance_document(
            store,
            yaml.safe_load(trust_store_yaml(store)),
            serial=serial,
            valid_from=self.start,
            valid_until=valid_until or self.start + KEY_LIFETIME,
            entry_keys={pid: self.signer(pid) for pid in store.participants},
            approvers={
                pid: self.signer(pid)
                for pid in (store.participants if approvers is None else approvers)
            },
        )
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)

    def with_participant(self, pid: str) -> Sandbox:
        """This sandbox with a new participant ``pid`` and its fresh key (a candidate for
        admission: the store ``write`` wrote does not list it)."""
        member, signing = _member(pid, self.start)
        members = {**self.trust.participants, pid: member}
        return replace(
            self,
            trust=replace(self.trust, participants=MappingProxyType(members)),
            keys=MappingProxyType({**self.keys, pid: signing[pid][1]}),
            key_ids=MappingProxyType({**self.key_ids, pid: signing[pid][0]}),
        )

    def governance(self) -> GovernedStore:
        """The governance of the trust store ``write`` writes (serial 1)."""
        text = self.trust_yaml()
        found = governed(text, parse_trust_store(text))
        assert found is not None  # trust_yaml always writes a governance section
        return found

    def write(self, directory: Path, passphrase: bytes) -> Mapping[str, Path]:
        """Write the trust store, agreements and encrypted key files; return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {
            "trust": directory / "trust.yaml",
            "agreements": directory / "agreements.yaml",
        }
        paths["trust"].write_text(self.trust_yaml())
        paths["agreements"].write_text(self.agreements_text)
        for owner, key in self.keys.items():
            path = directory / "keys" / f"{self.key_ids[owner]}.pem"
            path.parent.mkdir(exist_ok=True)
            write_private_key(path, key, passphrase)
            paths[f"key:{owner}"] = path
        for owner, private in self.encryption_keys.items():
            path = directory / "keys" / f"{private.key_id}.pem"
            write_encryption_key(path, private, passphrase)
            paths[f"encryption-key:{owner}"] = path
        return paths


KEY_LIFETIME = timedelta(days=730)
"""A sandbox key is valid this long from the sandbox's start."""

LEAD_TIME = timedelta(days=30)
"""By default a sandbox starts (keys, open agreements) this long before it is made."""


def default_start() -> datetime:
    """Midnight UTC :data:`LEAD_TIME` before now: where a sandbox starts unless told."""
    return (datetime.now(UTC) - LEAD_TIME).replace(hour=0, minute=0, second=0, microsecond=0)


def _public(owner: str, key_id: str, key: SigningKey, start: datetime) -> PublicKey:
    return PublicKey(owner, key_id, bytes(key.verify_key), start, start + KEY_LIFETIME)


def _member(
    pid: str, start: datetime, posts: Sequence[str] = ()
) -> tuple[Participant, dict[str, tuple[str, SigningKey]]]:
    """A new participant ``pid`` with fresh keys valid from ``start`` (its own and one per
    post), and each key's owner with its key id and private key."""
    key = SigningKey.generate()
    key_id = f"{pid}-{start:%Y}-01"
    signing = {pid: (key_id, key)}
    kind = (
        ParticipantKind.UN_COMPONENT if pid.startswith("UN-") else ParticipantKind.NATIONAL_SERVICE
    )
    post_keys = []
    for post in posts:
        owner = post_owner(pid, post)
        signing[owner] = (f"{pid}-{post}-{start:%Y}-01", SigningKey.generate())
        post_keys.append(_public(owner, *signing[owner], start))
    member = Participant(
        pid,
        NAMES.get(pid, f"Police service {pid}"),
        kind,
        "active",
        tuple(posts),
        (_public(pid, key_id, key, start),),
        post_keys=tuple(post_keys),
    )
    return member, signing


def make_sandbox(
    participants: Sequence[str],
    agreements_text: str,
    *,
    posts: Mapping[str, Sequence[str]] | None = None,
    auditors: Sequence[str] = ("oversight",),
    start: datetime | None = None,
    signers: Mapping[str, Sequence[str]] | None = None,
    encryption: bool = False,
) -> Sandbox:
    """A sandbox of ``participants`` (ids) under the agreement set in ``agreements_text``.

    With ``encryption`` each participant also has an X25519 encryption key (listed in the
    trust store, its private half in ``encryption_keys``).

    Each agreement is signed, as its parties' officers would sign it, by both parties
    that are in the sandbox; ``signers`` names, per agreement id, the only parties that
    sign it (none, or one: an agreement not in force). Its keys are valid for
    :data:`KEY_LIFETIME` from ``start`` (default: :func:`default_start`).
    """
    start = start or default_start()
    keys: dict[str, SigningKey] = {}
    key_ids: dict[str, str] = {}
    members: dict[str, Participant] = {}
    encryption_keys: dict[str, RecipientPrivateKey] = {}
    for pid in participants:
        members[pid], signing = _member(pid, start, (posts or {}).get(pid, ()))
        for owner, (key_id, key) in signing.items():
            keys[owner], key_ids[owner] = key, key_id
        if encryption:
            private, raw = generate_encryption_key(
                f"{pid}-enc-{start:%Y}-01", EncryptionAlgorithm.X25519
            )
            encryption_keys[pid] = private
            public = EncryptionKey(
                pid, private.key_id, private.algorithm, raw, start, start + KEY_LIFETIME
            )
            members[pid] = replace(members[pid], encryption_keys=(public,))
    hub_key = SigningKey.generate()
    keys[HUB], key_ids[HUB] = hub_key, f"hub-{start:%Y}-01"
    hub = Hub((_public(HUB, key_ids[HUB], hub_key, start),), tuple(auditors))
    trust = TrustStore(MappingProxyType(members), hub)
    signed = sign_agreements(agreements_text, keys, key_ids, start, signers or {})
    return Sandbox(
        trust,
        MappingProxyType(keys),
        MappingProxyType(key_ids),
        signed,
        parse_agreement_set(signed),
        MappingProxyType(encryption_keys),
        start,
    )


def sign_agreements(
    text: str,
    keys: Mapping[str, SigningKey],
    key_ids: Mapping[str, str],
    signed_at: datetime,
    signers: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """``text`` with every agreement signed by each of its parties that has a key in ``keys``
    (only by those ``signers`` names for an agreement it lists)."""
    entries = []
    for agreement in parse_agreement_set(text).agreements:
        chosen = (signers or {}).get(agreement.id, agreement.parties)
        for party in agreement.parties:
            if party in chosen and party in keys:
                signature = sign_agreement(agreement, party, key_ids[party], keys[party], signed_at)
                entries.append((agreement.id, signature))
    return add_signed(text, entries) if entries else text


def trust_store_yaml(trust: TrustStore) -> str:
    """The YAML document of ``trust``, as ``parse_trust_store`` reads it."""
    document: dict[str, Any] = {
        "version": 1,
        "hub": {
            "keys": [key_entry(k) for k in trust.hub.keys],
            "auditors": list(trust.hub.auditors),
        },
        "participants": [
            {
                "id": p.id,
                "name": p.name,
                "kind": p.kind.value,
                "status": p.status,
                "posts": list(p.posts),
                "keys": [key_entry(k) for k in p.keys],
                **({"post_keys": [key_entry(k) for k in p.post_keys]} if p.post_keys else {}),
            }
            | (
                {"encryption_keys": [encryption_key_entry(k) for k in p.encryption_keys]}
                if p.encryption_keys
                else {}
            )
            for p in trust.participants.values()
        ],
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def open_agreements(
    pairs: Sequence[tuple[str, str]], label: str = "sandbox", *, start: datetime | None = None
) -> str:
    """An agreement set in which each ``(a, b)`` pair exchanges every type in full, both ways.

    The agreements are in force from ``start`` (default: :func:`default_start`), open-ended.
    """
    since = (start or default_start()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f'version: "{label}"', "agreements:"]
    for a, b in pairs:
        lines += [
            f"  - id: {a}-{b}",
            f"    parties: [{a}, {b}]",
            "    status: active",
            f"    effective_from: {since}",
            "    flows:",
        ]
        for src, dst in ((a, b), (b, a)):
            lines += [
                f"      - from: {src}",
                f"        to: {dst}",
                "        types:",
                "          WANTED_PERSON: {sections: all, max_handling: H3}",
                "          VEHICLE_NOTICE: {sections: all, max_handling: H3}",
                "          BORDER_INCIDENT: {sections: all, max_handling: H3}",
            ]
    return "\n".join(lines) + "\n"
