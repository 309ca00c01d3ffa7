"""Counters are served in the Prometheus text format over HTTP."""

from __future__ import annotations

import asyncio

from border_exchange.adapters.metrics import Metrics, serve_metrics


async def test_counters_and_gauges_are_served_as_prometheus_text() -> None:
    metrics = Metrics()
    metrics.describe("quarantined_total", "Outbox records quarantined, by reason.")
    metrics.inc("quarantined_total", labels={"reason": "BAD_SIGNATURE"})
    metrics.inc("quarantined_total", labels={"reason": "BAD_SIGNATURE"})
    metrics.inc("routed_total", 3, labels={"origin": "CAF"})
    metrics.set("consumer_lag", 12, labels={"partition": "bx.CAF.outbox/0"})

    server = await serve_metrics(metrics, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        response = (await reader.read()).decode()
        writer.close()
    finally:
        server.close()
        await server.wait_closed()

    head, body = response.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 200 OK")
    assert "# HELP bx_quarantined_total Outbox records quarantined, by reason." in body
    assert "# TYPE bx_quarantined_total counter" in body
    assert 'bx_quarantined_total{reason="BAD_SIGNATURE"} 2' in body
    assert 'bx_routed_total{origin="CAF"} 3' in body
    assert "# TYPE bx_consumer_lag gauge" in body
    assert 'bx_consumer_lag{partition="bx.CAF.outbox/0"} 12' in body
