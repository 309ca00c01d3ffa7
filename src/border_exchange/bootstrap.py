"""Where the parts are wired together: configuration files in, running services out."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from border_exchange.adapters.agreement_files import AgreementSource, section_recipients
from border_exchange.adapters.config_file import kafka_settings_from, read_config_file
from border_exchange.adapters.instance_slot import InstanceSlot, group_instance
from border_exchange.adapters.kafka_clients import AIOKAFKA, KafkaClients
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.keyfiles import load_private_key, passphrase_from_env_or_prompt
from border_exchange.adapters.metrics import Metrics
from border_exchange.adapters.trust_file import TrustFile, TrustWatch
from border_exchange.domain.gateway_api import (
    DEFAULT_BURST,
    DEFAULT_PUBLISH_TIMEOUT,
    DEFAULT_RATE_PER_SECOND,
)
from border_exchange.domain.naming import ROUTER_GROUP
from border_exchange.domain.retention import DEFAULT_POLICY
from border_exchange.domain.routing import RoutingRules
from border_exchange.domain.trust import HUB, TrustStore
from border_exchange.errors import ConfigError
from border_exchange.services.router import (
    OUTBOX_PATTERN,
    PolicyView,
    Router,
    RouterTuning,
    utc_now,
)

if TYPE_CHECKING:  # imported where used: a router's start does not pay for the gateway
    from border_exchange.services.gateway import Gateway

log = structlog.get_logger("border_exchange.bootstrap")

KAFKA_CLIENTS: Final[KafkaClients] = AIOKAFKA
"""Where the services built here get their Kafka producers and consumers: aiokafka's.
(Services take a ``clients`` argument, this by default; tests give the in-memory fake's.)"""


_LIBRARY_LOGS: list[logging.Handler] = []
"""The handler ``configure_logging`` put on the standard library's root logger, if any."""


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Structured logs on stderr: JSON lines for machines, or readable for a terminal.

    The libraries' own logs (aiokafka, uvicorn), from warnings up, come out in the same
    form, so a process's stderr is one stream of JSON objects.
    """
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    threshold = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
        )
    )
    root = logging.getLogger()
    for previous in _LIBRARY_LOGS:
        root.removeHandler(previous)
    _LIBRARY_LOGS[:] = [handler]
    root.addHandler(handler)
    root.setLevel(max(threshold, logging.WARNING))


def config_keys_help(model: type[BaseModel]) -> str:
    """Every key of ``model``, its default (or that it is required) and what it sets."""
    lines = []
    for name, info in model.model_fields.items():
        if info.is_required():
            default = "required"
        else:
            default = "optional" if info.default is None else f"default {info.default}"
        lines.append(f"  {name:<24}{default}; {info.description}")
    return "\n".join(lines)


class RouterConfig(BaseModel):
    """The router's configuration file (besides its ``kafka`` section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trust_store: Path = Field(description="the trust store file (watched)")
    agreements: Path = Field(description="the agreement-set file (watched)")
    agreement_history: Path = Field(
        Path("agreement-history"), description="directory of every agreement set put in force"
    )
    signing_key: Path = Field(description="the hub's encrypted private key (audit checkpoints)")
    signing_key_id: str | None = Field(None, description="its key id; unset: the hub's current key")
    batch_size: int = Field(
        2000, ge=1, le=10_000, description="records per poll; a partition this far behind pauses"
    )
    checkpoint_every: int = Field(1000, ge=1, description="audit records between signed heads")
    checkpoint_interval: float = Field(10.0, gt=0, description="seconds between signed heads")
    offset_commit_interval: float = Field(
        10.0, gt=0, description="seconds between commits of the group's offset"
    )
    max_clock_skew: float = Field(300.0, ge=0, description="seconds")
    topic_refresh: float = Field(5.0, gt=0, description="seconds between outbox/policy scans")
    retention: Path | None = Field(
        None,
        description="retention settings file, as given to provision --retention (its grace "
        "period times the erasure of state); unset: the built-in policy",
    )
    metrics_host: str = Field("127.0.0.1", description="address of the metrics endpoint")
    metrics_port: int = Field(9464, ge=0, le=65535, description="0 turns the endpoint off")
    group_id: str = Field(ROUTER_GROUP, description="consumer group shared by the replicas")
    outbox_pattern: str = Field(OUTBOX_PATTERN, description="regular expression of outboxes")
    session_timeout: float = Field(
        6.0,
        ge=1,
        description="seconds without a heartbeat before the other routers take a member's "
        "partitions (the broker refuses less than its group.min.session.timeout.ms, 6 s)",
    )
    heartbeat_interval: float = Field(
        1.0, gt=0, description="seconds between heartbeats; below session_timeout / 3"
    )
    group_instance_id: str = Field(
        "auto",
        description="static group membership, so a restarted router gets its partitions back "
        "at once: auto (<host>-<n>, n the lowest free on this host), an id unique among the "
        "routers, or none (dynamic membership)",
    )
    audit_gaps_accepted: tuple[str, ...] = Field(
        (),
        description="audit chains whose deleted start is accepted, as the router logs them "
        "(<outbox>/<partition>@<offset>; comma-separated in the variable)",
    )

    @model_validator(mode="after")
    def _heartbeats_fit(self) -> RouterConfig:
        if self.heartbeat_interval * 3 > self.session_timeout:
            raise ValueError(
                f"heartbeat_interval {self.heartbeat_interval} s must be at most a third of "
                f"session_timeout {self.session_timeout} s"
            )
        return self

    @field_validator("audit_gaps_accepted", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return (
            [item.strip() for item in value.split(",") if item.strip()]
            if isinstance(value, str)
            else value
        )


ROUTER_ENV_PREFIX = "BX_ROUTER_"


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(
    model: type[_Model], raw: Mapping[str, Any], env_prefix: str, env: Mapping[str, str], what: str
) -> _Model:
    """``model`` from a config file's keys (all but ``kafka``), ``env_prefix`` variables winning."""
    values = {k: v for k, v in raw.items() if k != "kafka"}
    for name in model.model_fields:
        override = env.get(env_prefix + name.upper())
        if override:
            values[name] = override
    try:
        return model.model_validate(values)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid {what} configuration: {problems}") from exc


def _resolved(config: _Model, base: Path, paths: Iterable[str]) -> _Model:
    """``config`` with each of its ``paths`` that is set taken relative to ``base`` (the
    config file's folder)."""
    update = {
        name: base / getattr(config, name) for name in paths if getattr(config, name) is not None
    }
    return config.model_copy(update=update)


def _router_config(raw: Mapping[str, Any], base: Path, env: Mapping[str, str]) -> RouterConfig:
    config = _validated(RouterConfig, raw, ROUTER_ENV_PREFIX, env, "router")
    paths = ("trust_store", "agreements", "agreement_history", "signing_key")
    return _resolved(config, base, paths)


class PolicySource:
    """Watches the trust store and agreement files; yields a new policy view when either changes."""

    def __init__(
        self,
        trust_path: Path,
        agreements: AgreementSource,
        trust: TrustStore,
        trust_file: TrustFile | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.trust_path = trust_path
        self.agreements = agreements
        self.trust = trust
        self.trust_file = trust_file or TrustFile(trust_path)
        """Reloads the store under its governance: the last valid one stays in force."""
        self.metrics = metrics
        self._watch = TrustWatch(self.trust_file, self._rejected)

    def _rejected(self) -> None:
        if self.metrics is not None:
            self.metrics.inc("trust_rejected_total")

    def __call__(self) -> PolicyView | None:
        """The new view when a file changed and still validates; None otherwise."""
        reloaded = self._watch.poll()
        trust_changed = reloaded is not None
        if reloaded is not None:
            self.trust = reloaded
            self.agreements.participants = frozenset(self.trust.participants)
            self.agreements.trust = self.trust
        new_set = self.agreements.poll()
        current = self.agreements.current
        if current is None or not (trust_changed or new_set is not None):
            return None
        return PolicyView.build(self.trust, current, self.trust_file.governance)


@dataclass(frozen=True)
class RouterApp:
    """A configured router and what it needs to run."""

    router: Router
    config: RouterConfig
    slot: InstanceSlot | None = None
    """The host slot that holds this router's group instance id (``group_instance_id: auto``)."""


def build_router(config_path: Path, env: Mapping[str, str] | None = None) -> RouterApp:
    """Read the router's config file, load its keys and policy, and build the router."""
    env = os.environ if env is None else env
    raw = read_config_file(config_path)
    kafka: KafkaSettings = kafka_settings_from(raw, str(config_path), env)
    config = _router_config(raw, config_path.parent, env)
    trust_file = TrustFile(config.trust_store)
    trust = trust_file.reload()
    agreements = AgreementSource(
        config.agreements, trust.participants, config.agreement_history, trust
    )
    aset = agreements.load()
    key = load_private_key(config.signing_key, passphrase_from_env_or_prompt())
    key_id = config.signing_key_id
    if key_id is None:
        key_id = trust.current_key(HUB, utc_now()).key_id
    hub_key = trust.key_for(HUB, key_id, utc_now())
    if hub_key.raw != bytes(key.verify_key):
        raise ConfigError(
            f"{config.signing_key} is not the private half of hub key {key_id} in the trust store"
        )
    instance_id, slot = group_instance(config.group_instance_id, config.group_id)
    retention = DEFAULT_POLICY
    if config.retention is not None:
        from border_exchange.services.provisioner import load_retention  # only when set

        retention = load_retention(config.retention)
    tuning = RouterTuning(
        batch_size=config.batch_size,
        checkpoint_every=config.checkpoint_every,
        checkpoint_interval=config.checkpoint_interval,
        offset_commit_interval=config.offset_commit_interval,
        topic_refresh=config.topic_refresh,
        rules=RoutingRules(max_clock_skew=timedelta(seconds=config.max_clock_skew)),
        group_id=config.group_id,
        outbox_pattern=config.outbox_pattern,
        accepted_audit_gaps=frozenset(config.audit_gaps_accepted),
        session_timeout=config.session_timeout,
        heartbeat_interval=config.heartbeat_interval,
        group_instance_id=instance_id,
        retention=retention,
    )
    source = PolicySource(config.trust_store, agreements, trust, trust_file)
    router = Router(
        kafka,
        PolicyView.build(trust, aset, trust_file.governance),
        key,
        key_id,
        tuning=tuning,
        sources=(source,),
        clients=KAFKA_CLIENTS,
    )
    source.metrics = router.metrics
    router.metrics.describe(
        "trust_rejected_total", "Trust store versions refused (the last valid one kept)."
    )
    return RouterApp(router, config, slot)


class GatewayServerConfig(BaseModel):
    """The HTTP gateway's configuration file (besides its ``kafka`` section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    participant: str = Field(description="the national service, e.g. CAF")
    trust_store: Path = Field(description="the trust store file")
    signing_key: Path = Field(description="the service's encrypted private key")
    signing_key_id: str | None = Field(None, description="its key id; unset: the current key")
    encrypt_for: Path | None = Field(
        None,
        description="signed agreement set: seal each section for exactly the partners it "
        "permits; unset: sections in clear",
    )
    state_db: Path = Field(
        Path("gateway-http.db"), description="SQLite file: token hashes, idempotency keys"
    )
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=0, le=65535, description="port to listen on")
    publish_timeout: float = Field(
        DEFAULT_PUBLISH_TIMEOUT, gt=0, description="seconds a publish retries before 503"
    )
    rate_per_second: float = Field(
        DEFAULT_RATE_PER_SECOND, gt=0, description="requests per second per client"
    )
    burst: int = Field(DEFAULT_BURST, ge=1, description="requests at once per client")
    tls_cert: Path | None = Field(None, description="server certificate (PEM): serve HTTPS")
    tls_key: Path | None = Field(None, description="its private key (PEM)")
    tls_client_ca: Path | None = Field(
        None, description="CA whose client certificates are required (mTLS)"
    )


GATEWAY_ENV_PREFIX = "BX_GATEWAY_"
_GATEWAY_PATHS = (
    "trust_store",
    "signing_key",
    "encrypt_for",
    "state_db",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
)


def gateway_server_config(
    config_path: Path, env: Mapping[str, str] | None = None
) -> tuple[KafkaSettings, GatewayServerConfig]:
    """The Kafka settings and the HTTP gateway's settings of ``config_path``."""
    env = os.environ if env is None else env
    raw = read_config_file(config_path)
    kafka = kafka_settings_from(raw, str(config_path), env)
    config = _validated(GatewayServerConfig, raw, GATEWAY_ENV_PREFIX, env, "gateway")
    return kafka, _resolved(config, config_path.parent, _GATEWAY_PATHS)


def build_gateway(kafka: KafkaSettings, config: GatewayServerConfig) -> Gateway:
    """The Python gateway the HTTP server wraps: its key checked against the trust store."""
    from border_exchange.services.gateway import Gateway  # not imported by the router

    trust_file = TrustFile(config.trust_store)
    trust = trust_file.reload()
    key = load_private_key(config.signing_key, passphrase_from_env_or_prompt())
    key_id = config.signing_key_id or trust.current_key(config.participant, utc_now()).key_id
    # each attempt of a transaction is bounded, so a broker that is down gives 503 in time
    attempt_ms = max(1000, int(config.publish_timeout * 1000 / 2))
    return Gateway(
        kafka,
        config.participant,
        key,
        key_id,
        trust,
        retry_for=config.publish_timeout,
        producer_options={"request_timeout_ms": attempt_ms},
        recipients=None
        if config.encrypt_for is None
        else section_recipients(config.encrypt_for, trust),
        trust_updates=TrustWatch(trust_file).poll,
        clients=KAFKA_CLIENTS,
    )
