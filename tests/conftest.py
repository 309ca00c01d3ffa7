"""Shared fixtures: a real Kafka cluster for the tests that need one, and the run's clock.

The cluster is chosen by ``BX_TEST_KAFKA`` (see :mod:`tests.brokers`): ``launcher`` (the
default), ``external`` (``BX_KAFKA_BOOTSTRAP``, which alone chooses it too) or
``testcontainers``; the choice is printed in the run's header. ``--clock-shift``
(:mod:`tests.clock`) moves this process's clocks ahead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_launcher import ClusterInfo
from border_exchange.adapters.kafka_settings import KafkaSettings
from tests import brokers, clock
from tests.brokers import BrokerPath

_traveller: time_machine.travel | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift",
        default=None,
        metavar="730d",
        help="run with every clock of this process shifted ahead by N days (d) or hours (h); "
        f"also {clock.SHIFT_ENV}. Tests marked kafka are skipped in a shifted run.",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _traveller
    try:
        shift = clock.requested_shift(config.getoption("--clock-shift"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_SHIFT_KEY] = shift
    try:
        config.stash[_BROKER_KEY] = brokers.chosen_path(os.environ)
    except brokers.BrokerChoiceError as exc:
        raise pytest.UsageError(str(exc)) from None
    if shift is not None:
        _traveller = time_machine.travel(datetime.now(UTC) + shift, tick=True)
        _traveller.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _traveller
    if _traveller is not None:
        _traveller.stop()
        _traveller = None


def pytest_report_header(config: pytest.Config) -> list[str]:
    shift = config.stash.get(_SHIFT_KEY, None)
    shifted = f"shifted {shift} ahead" if shift is not None else "not shifted"
    path = config.stash[_BROKER_KEY]
    return [
        f"border-exchange kafka: {brokers.describe(path, os.environ)}",
        f"border-exchange clock: {shifted} (now {clock.iso(clock.now())})",
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash.get(_SHIFT_KEY, None) is None:
        return
    skip = pytest.mark.skip(
        reason="the clock shift applies to this process only; the broker and the processes "
        "a Kafka or real_clock test starts keep the real clock"
    )
    for item in items:
        if "kafka" in item.keywords or "real_clock" in item.keywords:
            item.add_marker(skip)


_SHIFT_KEY = pytest.StashKey[timedelta | None]()
_BROKER_KEY = pytest.StashKey[BrokerPath]()


@dataclass(frozen=True)
class KafkaCluster:
    """A cluster the tests may use, with an administrator's settings."""

    admin: KafkaSettings
    """The administrator (a super user) on the SASL listener with the authorizer."""
    info: ClusterInfo | None = None
    """Set when the local launcher started the cluster: its processes may be stopped."""
    brokers: int = 1

    def as_user(self, username: str, password: str) -> KafkaSettings:
        """Settings for another SCRAM principal on the same listener."""
        return self.admin.as_user(username, password)

    async def create_topic(
        self,
        prefix: str = "bx.test",
        partitions: int = 1,
        replication: int | None = None,
        configs: dict[str, str] | None = None,
        name: str | None = None,
    ) -> str:
        """Create a uniquely named topic (or ``name``) and return its name."""
        topic = name or f"{prefix}.{uuid.uuid4().hex[:10]}"
        admin = AIOKafkaAdminClient(**self.admin.client_kwargs())
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        topic,
                        partitions,
                        replication or min(self.brokers, 3),
                        topic_configs=configs or {},
                    )
                ]
            )
        finally:
            await admin.close()
        return topic


def _from_environment() -> KafkaCluster | None:
    bootstrap = os.environ.get("BX_KAFKA_BOOTSTRAP")
    if not bootstrap:
        return None
    user = os.environ.get("BX_KAFKA_ADMIN_USERNAME", "admin")
    password = os.environ.get("BX_KAFKA_ADMIN_PASSWORD")
    if not password:
        pytest.exit("BX_KAFKA_BOOTSTRAP is set but BX_KAFKA_ADMIN_PASSWORD is not", returncode=4)
    protocol = os.environ.get("BX_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    settings = KafkaSettings(bootstrap, protocol, user, password)  # type: ignore[arg-type]
    return KafkaCluster(admin=settings, brokers=int(os.environ.get("BX_KAFKA_BROKERS", "1")))


@pytest.fixture(scope="session")
def kafka(pytestconfig: pytest.Config) -> Iterator[KafkaCluster]:
    """A running single-broker cluster for the whole test session, from the chosen path."""
    path = pytestconfig.stash[_BROKER_KEY]
    if path is BrokerPath.EXTERNAL:
        external = _from_environment()
        assert external is not None  # chosen_path made sure BX_KAFKA_BOOTSTRAP is set
        yield external
        return
    if path is BrokerPath.TESTCONTAINERS:
        if not brokers.docker_answers():
            pytest.exit(f"{brokers.CHOICE_ENV}=testcontainers: no Docker engine answers", 4)
        from tests.containers import kafka_container

        with kafka_container() as cluster:
            yield cluster
        return
    info = kafka_launcher.start_cluster(1)
    try:
        admin = KafkaSettings(
            info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
        )
        yield KafkaCluster(admin=admin, info=info)
    finally:
        kafka_launcher.stop_cluster(info, remove=True)


@pytest.fixture(scope="session")
def kafka3() -> Iterator[KafkaCluster]:
    """A three-node cluster of the local launcher, whose brokers a test may stop."""
    info = kafka_launcher.start_cluster(3)
    try:
        admin = KafkaSettings(
            info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
        )
        yield KafkaCluster(admin=admin, info=info, brokers=3)
    finally:
        kafka_launcher.stop_cluster(info, remove=True)


@pytest.fixture
async def topic(kafka: KafkaCluster) -> str:
    """A fresh single-partition topic on the session cluster."""
    return await kafka.create_topic()
