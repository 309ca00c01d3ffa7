"""How a client reaches Kafka: bootstrap servers, security protocol and credentials.

This is the one place that turns settings into aiokafka keyword arguments, so that
every producer, consumer and admin client of the package connects the same way.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from border_exchange.domain import limits
from border_exchange.errors import ConfigError


def producer_size_kwargs() -> dict[str, Any]:
    """aiokafka producer arguments of the size contract (``domain.limits``)."""
    return {"max_request_size": limits.MAX_MESSAGE_BYTES}


def consumer_size_kwargs() -> dict[str, Any]:
    """aiokafka consumer arguments of the size contract (``domain.limits``)."""
    return {
        "max_partition_fetch_bytes": limits.FETCH_PARTITION_BYTES,
        "fetch_max_bytes": limits.FETCH_MAX_BYTES,
    }


SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL"]
_PROTOCOLS: tuple[SecurityProtocol, ...] = ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL")


@dataclass(frozen=True)
class KafkaSettings:
    """Connection settings of one Kafka principal."""

    bootstrap: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    username: str | None = None
    password: str | None = None
    sasl_mechanism: str = "SCRAM-SHA-512"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise ConfigError("Kafka bootstrap servers are empty (set BX_KAFKA_BOOTSTRAP)")
        if self.security_protocol not in _PROTOCOLS:
            raise ConfigError(
                f"unknown Kafka security protocol {self.security_protocol!r}; "
                f"use one of {', '.join(_PROTOCOLS)}"
            )
        if self.security_protocol.startswith("SASL") and not (self.username and self.password):
            raise ConfigError(
                f"{self.security_protocol} needs a username and a password "
                "(BX_KAFKA_USERNAME / BX_KAFKA_PASSWORD)"
            )

    def as_user(self, username: str, password: str) -> KafkaSettings:
        """The same cluster and listener, logged in as another SASL principal."""
        return replace(self, username=username, password=password)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = self.password
        if self.security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file)
            kwargs["ssl_context"] = context
        return kwargs

    @classmethod
    def from_mapping(
        cls, raw: Mapping[str, Any], env: Mapping[str, str] | None = None
    ) -> KafkaSettings:
        """Settings from a config mapping, each key overridden by its ``BX_KAFKA_*`` variable."""
        env = os.environ if env is None else env
        keys = ("bootstrap", "security_protocol", "username", "password", "sasl_mechanism",
                "ca_file", "cert_file", "key_file")  # fmt: skip
        values: dict[str, Any] = {k: raw[k] for k in keys if raw.get(k) is not None}
        for key in keys:
            value = env.get(f"BX_KAFKA_{key.upper()}")
            if value:
                values[key] = value
        if "bootstrap" not in values:
            raise ConfigError(
                "no Kafka bootstrap servers: set 'kafka.bootstrap' or BX_KAFKA_BOOTSTRAP"
            )
        if "security_protocol" not in values and values.get("username"):
            values["security_protocol"] = "SASL_PLAINTEXT"
        return cls(**values)
