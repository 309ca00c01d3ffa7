"""Counters are served in the Prometheus text format over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from border_exchange.adapters.metrics import Metrics, serve_metrics


async def test_counters_and_gauges_are_served_as_prometheus_text() -> None:
    metrics = Metrics()
    metrics.describe("quarantined_total", "Outbox records quarantined, by reason.")
    metrics.inc("quarantined_total", labels={"reason": "BAD_SIGNATURE"})
    metrics.inc("quarantined_total", labels={"reason": "BAD_SIGNATURE"})
    metrics.inc("routed_total", 3, labels={"origin": "CAF"})
    metrics.set("consumer_lag", 12, labels={"partition": "bx.CAF.outbox/0"})

    async with serve_metrics(metrics, "127.0.0.1", 0) as url:
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        response = (await reader.read()).decode()
        writer.close()

    head, body = response.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 200 OK")
    assert "# HELP bx_quarantined_total Outbox records quarantined, by reason." in body
    assert "# TYPE bx_quarantined_total counter" in body
    assert 'bx_quarantined_total{reason="BAD_SIGNATURE"} 2' in body
    assert 'bx_routed_total{origin="CAF"} 3' in body
    assert "# TYPE bx_consumer_lag gauge" in body
    assert 'bx_consumer_lag{partition="bx.CAF.outbox/0"} 12' in body


def test_latencies_are_histograms_with_buckets_sum_and_count() -> None:
    metrics = Metrics()
    metrics.describe("router_stage_seconds", "Seconds per transaction, by stage.")
    metrics.observe("router_stage_seconds", 0.003, {"stage": "check"})
    metrics.observe("router_stage_seconds", 0.2, {"stage": "check"})
    with metrics.timed("router_stage_seconds", {"stage": "commit"}):
        pass

    body = metrics.render()

    assert "# TYPE bx_router_stage_seconds histogram" in body
    assert 'bx_router_stage_seconds_bucket{le="0.005",stage="check"} 1.0' in body
    assert 'bx_router_stage_seconds_bucket{le="0.25",stage="check"} 2.0' in body
    assert 'bx_router_stage_seconds_bucket{le="+Inf",stage="check"} 2.0' in body
    assert 'bx_router_stage_seconds_sum{stage="check"} 0.203' in body
    assert metrics.value("router_stage_seconds", {"stage": "check"}) == 2
    assert metrics.value("router_stage_seconds", {"stage": "commit"}) == 1
    assert "_created" not in body


def test_a_metric_never_used_reads_zero_and_labels_must_stay_the_same() -> None:
    metrics = Metrics()
    assert metrics.value("routed_total", {"origin": "CAF"}) == 0
    metrics.inc("routed_total", labels={"origin": "CAF"})
    assert metrics.value("routed_total", {"origin": "CAF"}) == 1
    assert metrics.value("routed_total", {"origin": "COD"}) == 0
    with pytest.raises(ValueError, match="label names"):
        metrics.inc("routed_total", labels={"recipient": "COD"})
