"""Provisioning: trust store and cluster state in, a plan out, applied or only shown.

Generated passwords are kept in a credentials file (YAML, principal -> password,
mode 0600). A principal's password is generated once and reused on later runs;
a revoked principal's entry is dropped, so that a participant reinstated later
gets fresh credentials.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from border_exchange.adapters.config_file import kafka_settings_from, read_config_file
from border_exchange.adapters.kafka_admin import apply_plan, read_state
from border_exchange.adapters.kafka_security import wait_for_login
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.provisioning import Plan, plan
from border_exchange.domain.retention import DEFAULT_POLICY, RetentionPolicy, policy_from
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import ConfigError

DEFAULT_SECRETS_NAME = "bx-credentials.yaml"


@dataclass(frozen=True)
class ProvisionResult:
    """The plan of one run and whether it was carried out."""

    plan: Plan
    applied: bool
    secrets_file: Path | None = None


def load_admin_settings(path: str | Path, env: Mapping[str, str] | None = None) -> KafkaSettings:
    """The administrator's connection from a YAML file ``{kafka: {bootstrap, ...}}``."""
    config = read_config_file(path)
    if not isinstance(config.get("kafka"), Mapping):
        raise ConfigError(f"admin config {path}: expected a mapping with a 'kafka' section")
    return kafka_settings_from(config, str(path), env)


def load_retention(path: str | Path) -> RetentionPolicy:
    """A retention policy from a YAML file ``{retention: {feed: 35d, grace: 7d, ...}}``."""
    config = read_config_file(path)
    section = config.get("retention", config)
    if not isinstance(section, Mapping):
        raise ConfigError(f"retention file {path}: expected a mapping of setting to duration")
    return policy_from(section, str(path))


def read_secrets(path: Path) -> dict[str, str]:
    """The credentials file's passwords by principal; empty when the file does not exist."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"credentials file {path} is accessible to other users; run 'chmod 600 {path}'"
        )
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc}") from exc
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ConfigError(f"credentials file {path}: expected a mapping of principal to password")
    return dict(raw)


def write_secrets(path: Path, passwords: Mapping[str, str]) -> None:
    """Write the credentials file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    text = (
        "# border-exchange SCRAM credentials, principal: password. Keep secret.\n"
        + yaml.safe_dump(dict(sorted(passwords.items())), default_flow_style=False)
    )
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)


def new_password() -> str:
    """A fresh random password (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


async def provision(
    trust: TrustStore,
    settings: KafkaSettings,
    secrets_file: Path,
    *,
    dry_run: bool = False,
    scope: Iterable[str] | None = None,
    policy: RetentionPolicy = DEFAULT_POLICY,
) -> ProvisionResult:
    """Plan the changes ``trust`` and ``policy`` imply for the cluster and, unless
    ``dry_run``, apply them."""
    policy.check()  # refused before the cluster is even read
    state = await read_state(settings)
    changes = plan(trust, state, scope, policy)
    if dry_run or changes.empty:
        return ProvisionResult(changes, applied=False)
    passwords = read_secrets(secrets_file)
    for change in changes.create_users:
        passwords.setdefault(change.principal, new_password())
    write_secrets(secrets_file, passwords)  # before the users exist: no password is ever lost
    await apply_plan(settings, changes, passwords)
    # New SCRAM credentials reach the brokers a moment after the controller has them:
    # return when every new principal can log in, so the next step may use it.
    await asyncio.gather(
        *(
            wait_for_login(settings.as_user(c.principal, passwords[c.principal]))
            for c in changes.create_users
        )
    )
    if changes.delete_users:
        for change in changes.delete_users:
            passwords.pop(change.principal, None)
        write_secrets(secrets_file, passwords)
    return ProvisionResult(changes, applied=True, secrets_file=secrets_file)
