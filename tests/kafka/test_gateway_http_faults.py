"""The HTTP gateway when the broker goes away (on a cluster of its own), and over mTLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.gateway_store import GatewayStore
from border_exchange.adapters.tls_ca import create_ca, issue_client_cert, issue_server_cert
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.gateway_api import RETRY_AFTER_SECONDS
from border_exchange.domain.naming import outbox_topic
from border_exchange.domain.samples import sample_alert_data
from border_exchange.services.gateway import Gateway
from border_exchange.services.gateway_http import GatewayApi
from tests.conftest import KafkaCluster
from tests.gateway_server import ServerProcess, add_token, write_config
from tests.kafka.test_gateway import KEY, outbox, participant, trust_for
from tests.kafka.test_gateway_http import api_client, assert_problem
from tests.kafka.test_gateway_post_faults import OwnCluster
from tests.kafka.test_gateway_post_faults import cluster as cluster  # its own broker, to kill

pytestmark = pytest.mark.kafka


@pytest.mark.slow
async def test_broker_down_is_503_with_retry_after_and_the_retry_publishes_once(
    cluster: OwnCluster, tmp_path: Path
) -> None:
    origin = "KEN"
    await cluster.create_topic(outbox_topic(origin))
    store = GatewayStore(tmp_path / "gateway.db")
    token = store.add_client("ken-border-control")
    auth = {"Authorization": f"Bearer {token}"}
    gateway = Gateway(
        cluster.admin,
        origin,
        KEY,
        f"{origin}-1",
        trust_for(origin),
        retry_for=10.0,
        producer_options={"request_timeout_ms": 1500},
    )
    alert = sample_alert_data(AlertType.VEHICLE_NOTICE, origin=origin)
    own = KafkaCluster(admin=cluster.admin)
    async with gateway, api_client(GatewayApi(gateway, store)) as client:
        first = await client.post("/alerts", json=alert, headers=auth)
        assert first.status_code == 202

        await asyncio.to_thread(kafka_launcher.kill_node, cluster.info.nodes[0])
        during = alert | {"alert_id": "KEN-DURING-OUTAGE"}
        down = await client.post("/alerts", json=during, headers=auth)
        assert_problem(down, 503, "nothing was published")
        assert down.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
        assert (await client.get("/health", headers=auth)).status_code == 200

        node = cluster.info.nodes[0]
        cluster.info = await asyncio.to_thread(kafka_launcher.restart_node, cluster.info, node)
        for _ in range(20):  # as a national system would: retry with the same key
            retried = await client.post(
                "/alerts", json=alert, headers=auth | {"Idempotency-Key": "k1"}
            )
            if retried.status_code != 503:
                break
            await asyncio.sleep(float(retried.headers["retry-after"]))
        assert retried.status_code == 202, retried.text
        again = await client.post("/alerts", json=alert, headers=auth | {"Idempotency-Key": "k1"})
        assert again.json() == retried.json()
    store.close()
    accepted = {first.json()["message_id"], retried.json()["message_id"]}
    # commit markers reach the partition a moment after the commit returns
    committed: list[str] = []
    for _ in range(30):
        committed = [e.header.message_id for e in await outbox(own, origin)]
        if len(committed) >= 2:
            break
        await asyncio.sleep(1)
    assert sorted(committed) == sorted(accepted)  # both answered 202, each once
    # Nothing of the request made while the broker was dead ever reaches the partition,
    # not even aborted: the producer it was sent with is discarded, not left to deliver
    # it once the broker is back (where it would join the producer's earlier transaction
    # and share its fate). Retries while the broker comes back may leave aborted records.
    written = {e.header.alert_id for e in await outbox(own, origin, "read_uncommitted")}
    assert during["alert_id"] not in written


def test_mtls_refuses_a_certificate_of_another_ca_and_serves_the_service_own(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    origin = participant()
    asyncio.run(kafka.create_topic(name=outbox_topic(origin)))
    ca = create_ca(tmp_path / "ca", "CAF gateway CA")
    server_cert = issue_server_cert(ca, tmp_path / "server")
    client_cert = issue_client_cert(ca, tmp_path / "client", "caf-case-management")
    stranger_ca = create_ca(tmp_path / "stranger", "someone else's CA")
    stranger = issue_client_cert(stranger_ca, tmp_path / "stranger-client", "caf-case-management")
    config = write_config(
        tmp_path / "gateway",
        kafka.admin,
        origin,
        tls_cert=str(server_cert.cert_file),
        tls_key=str(server_cert.key_file),
        tls_client_ca=str(ca.cert_file),
    )
    token = add_token(config, "caf-case-management")

    def context(client: object | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(ca.cert_file))
        if client is not None:
            ctx.load_cert_chain(client.cert_file, client.key_file)  # type: ignore[attr-defined]
        return ctx

    server = ServerProcess.start(config, token, scheme="https", verify=context(client_cert))
    try:
        auth = {"Authorization": f"Bearer {token}"}
        ok = httpx.get(f"{server.url}/health", headers=auth, verify=context(client_cert))
        assert ok.status_code == 200
        for wrong in (stranger, None):
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                httpx.get(f"{server.url}/health", headers=auth, verify=context(wrong))
        curl = subprocess.run(
            ["curl", "-sS", "--cacert", str(ca.cert_file), "--cert", str(stranger.cert_file),
             "--key", str(stranger.key_file), "-H", f"Authorization: Bearer {token}",
             f"{server.url}/health"],
            capture_output=True, check=False,
        )  # fmt: skip
        assert curl.returncode != 0
        assert ok.json()["participant"] == origin
    finally:
        assert server.stop() == 0
