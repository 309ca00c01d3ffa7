"""A local certificate authority for Kafka's TLS listeners, made with ``cryptography``.

The CA signs one server certificate for the brokers (SAN ``127.0.0.1`` and
``localhost`` by default) and one client certificate per principal, whose
common name is the principal's name (``CAF.gateway``): the broker maps the CN
to ``User:CAF.gateway``, so the same ACLs hold over mTLS and over SASL_SSL.
Keys are EC P-256 in unencrypted PKCS#8, written readable by their owner only.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANIZATION = "border-exchange"


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, as PEM files."""

    cert_file: Path
    key_file: Path

    @property
    def bundle_file(self) -> Path:
        """Key and certificate in one PEM file (a Kafka PEM keystore)."""
        return self.cert_file.with_name(self.cert_file.stem + "-bundle.pem")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        ]
    )


def _save(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    issued = Issued(directory / f"{stem}.pem", directory / f"{stem}-key.pem")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    issued.cert_file.write_bytes(cert_pem)
    _write_private(issued.key_file, _key_pem(key))
    _write_private(issued.bundle_file, _key_pem(key) + cert_pem)
    return issued


def create_ca(
    directory: Path, common_name: str = "border-exchange local CA", days: int = 3650
) -> Issued:
    """A new self-signed CA in ``directory`` (``ca.pem``, ``ca-key.pem``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _save(directory, "ca", cert, key)


def _load(ca: Issued) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(ca.cert_file.read_bytes())
    key = serialization.load_pem_private_key(ca.key_file.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{ca.key_file} is not an EC private key")
    return cert, key


def _issue(
    ca: Issued,
    directory: Path,
    stem: str,
    common_name: str,
    usage: x509.ObjectIdentifier,
    sans: Sequence[x509.GeneralName],
    days: int,
) -> Issued:
    ca_cert, ca_key = _load(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return _save(directory, stem, builder.sign(ca_key, hashes.SHA256()), key)


def issue_server_cert(
    ca: Issued,
    directory: Path,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    days: int = 825,
) -> Issued:
    """A broker certificate for ``hosts`` (IP addresses or DNS names), signed by ``ca``."""
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return _issue(ca, directory, "server", hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, sans, days)


def issue_client_cert(ca: Issued, directory: Path, principal: str, days: int = 365) -> Issued:
    """A client certificate whose CN is ``principal`` (the broker's ACL principal)."""
    return _issue(ca, directory, principal, principal, ExtendedKeyUsageOID.CLIENT_AUTH, (), days)
