"""Private keys on disk: passphrase-encrypted PKCS#8 PEM, mode 0600.

Signing keys are Ed25519. Encryption keys are X25519, or for the hybrid post-quantum
KEM an ML-KEM-768 block followed by an X25519 block in the same file; the key id is the
file name without ``.pem`` (``keys generate --encryption`` writes ``<key id>.pem``).

The passphrase comes from the environment or an interactive prompt, never from
the command line.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.signing import SigningKey

from border_exchange.domain.section_seal import RecipientPrivateKey
from border_exchange.domain.trust import EncryptionAlgorithm
from border_exchange.errors import ConfigError, KeyNotValidError, KeyProblem

PASSPHRASE_ENV: Final = "BX_KEY_PASSPHRASE"
MIN_PASSPHRASE: Final = 8


_PEM_END: Final = b"-----END ENCRYPTED PRIVATE KEY-----\n"


def _pem(
    private: Ed25519PrivateKey | X25519PrivateKey | MLKEM768PrivateKey, passphrase: bytes
) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def write_private_key(path: str | Path, key: SigningKey, passphrase: bytes) -> None:
    """Write ``key`` to ``path`` as encrypted PKCS#8 PEM readable by its owner only."""
    _write_pem(path, _pem(Ed25519PrivateKey.from_private_bytes(bytes(key)), passphrase), passphrase)


def write_encryption_key(path: str | Path, key: RecipientPrivateKey, passphrase: bytes) -> None:
    """Write the private encryption ``key`` to ``path`` (encrypted PKCS#8 PEM, mode 0600)."""
    private = key.private
    if isinstance(private, X25519PrivateKey):
        pem = _pem(private, passphrase)
    elif key.halves is not None:
        pem = _pem(key.halves[0], passphrase) + _pem(key.halves[1], passphrase)
    else:
        raise ConfigError(f"encryption key {key.key_id}: the hybrid key's halves are unknown")
    _write_pem(path, pem, passphrase)


def generate_encryption_key(
    key_id: str, algorithm: EncryptionAlgorithm
) -> tuple[RecipientPrivateKey, bytes]:
    """A new private encryption key and its raw public key, as the trust store lists it."""
    x25519 = X25519PrivateKey.generate()
    x_public = x25519.public_key().public_bytes_raw()
    if algorithm is EncryptionAlgorithm.X25519:
        return RecipientPrivateKey(key_id, algorithm, x25519), x_public
    mlkem = MLKEM768PrivateKey.generate()
    private = hpke.MLKEM768X25519PrivateKey(mlkem, x25519)
    return (
        RecipientPrivateKey(key_id, algorithm, private, (mlkem, x25519)),
        mlkem.public_key().public_bytes_raw() + x_public,
    )


def load_encryption_key(path: str | Path, passphrase: bytes) -> RecipientPrivateKey:
    """The private encryption key in the encrypted PEM file at ``path``; its id is the stem."""
    target = Path(path)
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read private key {path}: {exc.strerror}") from exc
    blocks = [block + _PEM_END for block in data.split(_PEM_END) if block.strip()]
    try:
        keys = [serialization.load_pem_private_key(block, password=passphrase) for block in blocks]
    except (ValueError, TypeError) as exc:
        raise KeyNotValidError(
            f"cannot unlock private key {path}: wrong passphrase or not an encrypted key",
            KeyProblem.KEY_LOCKED,
        ) from exc
    key_id = target.name.removesuffix(".pem")
    if len(keys) == 1 and isinstance(keys[0], X25519PrivateKey):
        return RecipientPrivateKey(key_id, EncryptionAlgorithm.X25519, keys[0])
    if (
        len(keys) == 2
        and isinstance(keys[0], MLKEM768PrivateKey)
        and isinstance(keys[1], X25519PrivateKey)
    ):
        private = hpke.MLKEM768X25519PrivateKey(keys[0], keys[1])
        algorithm = EncryptionAlgorithm.MLKEM768_X25519
        return RecipientPrivateKey(key_id, algorithm, private, (keys[0], keys[1]))
    raise KeyNotValidError(
        f"{path} holds no X25519 or ML-KEM-768 + X25519 key", KeyProblem.KEY_LOCKED
    )


def _write_pem(path: str | Path, pem: bytes, passphrase: bytes) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise ConfigError(f"the key passphrase must have at least {MIN_PASSPHRASE} characters")
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
