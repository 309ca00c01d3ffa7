"""``border-exchange keys``: generate signing keys and show the trust store."""

from __future__ import annotations

import argparse
import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from nacl.signing import SigningKey

from border_exchange.adapters.keyfiles import (
    generate_encryption_key,
    load_private_key,
    passphrase_from_env_or_prompt,
    write_encryption_key,
    write_private_key,
)
from border_exchange.adapters.trust_file import load_trust_store
from border_exchange.cli.commands import Commands, command_group
from border_exchange.domain.catalog import is_participant_id
from border_exchange.domain.naming import is_role_name
from border_exchange.domain.times import aware_time, iso
from border_exchange.domain.trust import (
    HUB,
    EncryptionAlgorithm,
    EncryptionKey,
    PublicKey,
    encryption_key_entry,
    key_entry,
    parse_trust_store,
    post_owner,
)
from border_exchange.domain.trust_governance import (
    GovernedStore,
    accept,
    governed,
    signatures_of,
    with_signatures,
)
from border_exchange.errors import ConfigError


def register(subparsers: Commands) -> None:
    """Add ``keys generate``, ``show``, ``sign-store`` and ``combine-store``."""
    commands = command_group(subparsers, "keys", "generate signing keys, show the trust store")

    generate = commands.add_parser(
        "generate",
        help="write a new encrypted private key and the trust store entry of its public key",
        description="The passphrase is read from BX_KEY_PASSPHRASE or prompted for.",
    )
    generate.add_argument("--participant", required=True, help="participant id, or 'hub'")
    generate.add_argument("--out", required=True, type=Path, help="directory to write into")
    generate.add_argument(
        "--post",
        help="a border post of the participant: its own key, which signs hit reports only "
        "(listed under post_keys of the participant)",
    )
    generate.add_argument("--key-id", help="key id (default: <participant>[-<post>]-<YYYY>-<MMDD>)")
    generate.add_argument("--valid-days", type=int, default=365, help="validity (default 365)")
    generate.add_argument("--valid-from", help="start of validity, ISO 8601 (default: now)")
    generate.add_argument(
        "--encryption",
        choices=[a.value for a in EncryptionAlgorithm],
        help="an encryption key (sections are wrapped to it) instead of a signing key: "
        "X25519, or MLKEM768-X25519 (hybrid post-quantum, 1.2 KB per wrapped key)",
    )
    generate.set_defaults(handler=generate_key)

    show = commands.add_parser("show", help="print participants and keys with their validity")
    show.add_argument("truststore", type=Path, help="trust store YAML file")
    show.add_argument("--at", help="judge validity at this time, ISO 8601 (default: now)")
    show.set_defaults(handler=show_trust_store)

    sign = commands.add_parser(
        "sign-store",
        help="sign, as one participant, its entry of a governed trust store draft and approve it",
        description=(
            "The officer signs on the service's own machine (passphrase from "
            "BX_KEY_PASSPHRASE or a prompt) and sends the file to the hub."
        ),
    )
    sign.add_argument("draft", type=Path, help="the trust store draft, with a governance section")
    sign.add_argument("--as", dest="participant", required=True, help="participant id")
    sign.add_argument("--key", required=True, type=Path, help="the participant's key file")
    sign.add_argument("--key-id", required=True, help="the key's id (a key of the store in force)")
    sign.add_argument("--out", required=True, type=Path, help="signature file to write")
    sign.set_defaults(handler=sign_store)

    combine = commands.add_parser(
        "combine-store",
        help="add the participants' signature files to a trust store draft and check the result",
    )
    combine.add_argument("draft", type=Path, help="the trust store draft")
    combine.add_argument("signatures", type=Path, nargs="+", help="files of 'keys sign-store'")
    combine.add_argument("--current", type=Path, help="the store in force, to check the change")
    combine.add_argument("--out", required=True, type=Path, help="signed trust store to write")
    combine.set_defaults(handler=combine_store)


def _time(value: str | None, option: str) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    return aware_time(value, option).astimezone(UTC)


def generate_key(args: argparse.Namespace) -> int:
    """Write ``<key_id>.pem`` and ``<key_id>.pub.yaml`` and print the trust store entry."""
    owner: str = args.participant
    if owner != HUB and not is_participant_id(owner):
        raise ConfigError(f"--participant: {owner!r} is not a participant id nor 'hub'")
    if args.valid_days < 1:
        raise ConfigError("--valid-days must be at least 1")
    post: str | None = args.post
    if post is not None and (owner == HUB or not is_role_name(post)):
        raise ConfigError(f"--post: {post!r} is not a post name of a participant")
    valid_from = _time(args.valid_from, "--valid-from")
    kind = ("enc",) if args.encryption else ()
    key_id: str = args.key_id or "-".join(
        (owner, *((post,) if post else ()), *kind, f"{valid_from:%Y-%m%d}")
    )
    if not key_id or "/" in key_id or key_id.startswith("."):
        raise ConfigError(f"--key-id: {key_id!r} cannot name a file")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    passphrase = passphrase_from_env_or_prompt(confirm=True)
    if args.encryption:
        if owner == HUB or post is not None:
            raise ConfigError(
                "--encryption: a service's key, held at its gateway and posts; the hub holds "
                "none (it reads nothing) and a post has no key of its own"
            )
        return _generate_encryption_key(args, owner, key_id, valid_from, passphrase)
    signing_key = SigningKey.generate()
    public = PublicKey(
        owner if post is None else post_owner(owner, post),
        key_id,
        bytes(signing_key.verify_key),
        valid_from,
        valid_from + timedelta(days=args.valid_days),
    )
    private_path = out / f"{key_id}.pem"
    write_private_key(private_path, signing_key, passphrase)
    entry = key_entry(public)
    del entry["revoked_at"], entry["revocation_reason"]
    text = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)
    (out / f"{key_id}.pub.yaml").write_text(text, encoding="utf-8")
    where = "hub.keys" if owner == HUB else f"the keys of participant {owner}"
    if post is not None:
        where = f"the post_keys of participant {owner}"
    print(f"# private key written to {private_path} (mode 0600)")
    print(f"# add this entry to {where} in the trust store:")
    print(text, end="")
    return 0


def _generate_encryption_key(
    args: argparse.Namespace, owner: str, key_id: str, valid_from: datetime, passphrase: bytes
) -> int:
    algorithm = EncryptionAlgorithm(args.encryption)
    private, raw = generate_encryption_key(key_id, algorithm)
    until = valid_from + timedelta(days=args.valid_days)
    public = EncryptionKey(owner, key_id, algorithm, raw, valid_from, until)
    private_path = args.out / f"{key_id}.pem"
    write_encryption_key(private_path, private, passphrase)
    entry = encryption_key_entry(public)
    del entry["revoked_at"], entry["revocation_reason"]
    text = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)
    (args.out / f"{key_id}.pub.yaml").write_text(text, encoding="utf-8")
    print(f"# private encryption key written to {private_path} (mode 0600); keep it at the")
    print("# service's gateway and posts only, and keep it after rotation until every alert")
    print("# wrapped to it has expired")
    print(f"# add this entry to the encryption_keys of participant {owner} in the trust store:")
    print(text, end="")
    return 0


def _status(key: PublicKey, at: datetime) -> str:
    problem = key.problem_at(at)
    return "valid" if problem is None else problem[0].value.lower().removeprefix("key_")


def _iso(value: datetime | None) -> str:
    return "-" if value is None else iso(value)


def show_trust_store(args: argparse.Namespace) -> int:
    """Print every participant and key with its validity at ``--at``."""
    store = load_trust_store(args.truststore)
    at = _time(args.at, "--at")
    rows = [
        (
            "OWNER",
            "NAME",
            "KIND",
            "KEY ID",
            "VALID FROM",
            "VALID UNTIL",
            "REVOKED",
            "AT " + _iso(at),
        )
    ]
    for key in store.hub.keys:
        rows.append(("hub", "hub operator", "HUB", *_key_cells(key, at)))
    for participant in sorted(store.participants.values(), key=lambda p: p.id):
        name = participant.name if participant.active else f"{participant.name} (suspended)"
        if not participant.keys:
            rows.append(
                (participant.id, name, participant.kind.value, "-", "-", "-", "-", "no key")
            )
        for key in participant.keys:
            rows.append((participant.id, name, participant.kind.value, *_key_cells(key, at)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if store.hub.auditors:
        print(f"auditors: {', '.join(store.hub.auditors)}")
    return 0


def _key_cells(key: PublicKey, at: datetime) -> tuple[str, str, str, str, str]:
    revoked = "-"
    if key.revoked_at is not None:
        revoked = f"{_iso(key.revoked_at)} ({key.revocation_reason or 'no reason given'})"
    fingerprint = base64.b64encode(key.raw).decode()[:8]
    return (
        f"{key.key_id} [{fingerprint}…]",
        _iso(key.valid_from),
        _iso(key.valid_until),
        revoked,
        _status(key, at),
    )


def _draft(path: Path) -> tuple[dict[str, Any], GovernedStore]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    governance = governed(text, parse_trust_store(text))
    if governance is None:
        raise ConfigError(f"{path} has no governance section (serial, valid_from, valid_until)")
    return yaml.safe_load(text), governance


def sign_store(args: argparse.Namespace) -> int:
    """Write the participant's entry signature and approval of the draft."""
    _, governance = _draft(args.draft)
    if args.participant not in governance.store.participants:
        raise ConfigError(f"--as: {args.participant} is not in {args.draft}")
    key = load_private_key(args.key, passphrase_from_env_or_prompt())
    signed = signatures_of(governance, args.participant, args.key_id, key)
    args.out.write_text(yaml.safe_dump(signed, sort_keys=False), encoding="utf-8")
    print(
        f"{args.participant} signed its entry and approved store serial {governance.serial} "
        f"(digest {signed['store_digest'][:16]}); wrote {args.out}"
    )
    return 0


def combine_store(args: argparse.Namespace) -> int:
    """Insert the signatures, then check the store alone and, with --current, the change."""
    document, _ = _draft(args.draft)
    files = []
    for path in args.signatures:
        try:
            files.append(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read signature file {path}: {exc}") from exc
    text = yaml.safe_dump(with_signatures(document, files), sort_keys=False)
    new = governed(text, parse_trust_store(text))
    assert new is not None  # the draft had a governance section
    old = None
    if args.current is not None:
        current_text = args.current.read_text(encoding="utf-8")
        old = governed(current_text, parse_trust_store(current_text))
    problems = accept(new, old, datetime.now(UTC))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s); {args.out} not written")
        return 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: serial {new.serial}, digest {new.digest.hex()[:16]}")
    return 0
