"""Private signing keys on disk: passphrase-encrypted PKCS#8 PEM, mode 0600.

The passphrase comes from the environment or an interactive prompt, never from
the command line.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.signing import SigningKey

from border_exchange.errors import ConfigError, KeyNotValidError, KeyProblem

PASSPHRASE_ENV: Final = "BX_KEY_PASSPHRASE"
MIN_PASSPHRASE: Final = 8


def write_private_key(path: str | Path, key: SigningKey, passphrase: bytes) -> None:
    """Write ``key`` to ``path`` as encrypted PKCS#8 PEM readable by its owner only."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise ConfigError(f"the key passphrase must have at least {MIN_PASSPHRASE} characters")
    private = Ed25519PrivateKey.from_private_bytes(bytes(key))
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    target = Path(path)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{target} exists; refusing to overwrite a private key") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(target, 0o600)


def load_private_key(path: str | Path, passphrase: bytes) -> SigningKey:
    """The Ed25519 signing key in the encrypted PEM file at ``path``."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read private key {path}: {exc.strerror}") from exc
    try:
        private = serialization.load_pem_private_key(pem, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise KeyNotValidError(
            f"cannot unlock private key {path}: wrong passphrase or not an encrypted key",
            KeyProblem.KEY_LOCKED,
        ) from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyNotValidError(f"{path} holds no Ed25519 key", KeyProblem.KEY_LOCKED)
    raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return SigningKey(raw)


def passphrase_from_env_or_prompt(env: str = PASSPHRASE_ENV, *, confirm: bool = False) -> bytes:
    """The key passphrase from ``$env``, else from a prompt when stdin is a terminal."""
    value = os.environ.get(env)
    if value:
        return value.encode("utf-8")
    if not sys.stdin.isatty():
        raise ConfigError(f"no key passphrase: set {env} or run from a terminal to be prompted")
    first = getpass.getpass("Key passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise ConfigError("the passphrases differ")
    if not first:
        raise ConfigError("empty passphrase")
    return first.encode("utf-8")
