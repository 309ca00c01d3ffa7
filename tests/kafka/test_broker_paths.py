"""Each broker path a run can choose works where it can run (see tests/brokers.py)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.brokers import CHOICE_ENV, BrokerPath, chosen_path, docker_answers
from tests.conftest import KafkaCluster

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]


def test_the_session_broker_comes_from_the_path_the_run_chose(kafka: KafkaCluster) -> None:
    path = chosen_path(os.environ)
    assert (kafka.info is not None) == (path is BrokerPath.LAUNCHER)


def test_the_external_path_runs_tests_on_the_cluster_it_is_given(kafka: KafkaCluster) -> None:
    """A second run pointed at this session's broker takes it, says so, and passes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BX_")}
    env |= {
        CHOICE_ENV: "external",
        "BX_KAFKA_BOOTSTRAP": kafka.admin.bootstrap,
        "BX_KAFKA_ADMIN_USERNAME": kafka.admin.username or "admin",
        "BX_KAFKA_ADMIN_PASSWORD": kafka.admin.password or "",
        "BX_KAFKA_SECURITY_PROTOCOL": kafka.admin.security_protocol,
    }
    test = "tests/kafka/test_broker_transactions.py"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert f"border-exchange kafka: external at {kafka.admin.bootstrap}" in run.stdout
    assert re.search(r"=+ 1 passed in ", run.stdout.splitlines()[-1]), run.stdout[-500:]


@pytest.mark.skipif(
    not docker_answers(), reason="no Docker engine answers here: the testcontainers path needs one"
)
async def test_the_testcontainers_path_starts_a_scram_broker_that_takes_a_record() -> None:
    from tests.containers import kafka_container

    with kafka_container() as cluster:
        assert cluster.admin.security_protocol == "SASL_PLAINTEXT"
        topic = await cluster.create_topic()
        producer = AIOKafkaProducer(**cluster.admin.client_kwargs())
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"through the container")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, auto_offset_reset="earliest", **cluster.admin.client_kwargs()
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 60)
        finally:
            await consumer.stop()
        assert record.value == b"through the container"
