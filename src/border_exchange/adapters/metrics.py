"""A process's metrics on prometheus_client: counters, gauges, latency histograms, their endpoint.

Services count by name (``metrics.inc("routed_total", labels={"origin": "CAF"})``); each
name becomes ``bx_<name>`` in the process's own registry the first time it is used, with
the label names of that use and the help text ``describe`` gave it.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Final, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    make_asgi_app,
)

from border_exchange.adapters.http_server import serving

disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client; no ``*_created`` series

LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Histogram buckets (s): from a millisecond (one check) to half a minute (a stalled broker)."""

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""

_Labels = Mapping[str, str] | None
_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)
_latency_histogram = functools.partial(Histogram, buckets=LATENCY_BUCKETS)


class Metrics:
    """A process's counters, gauges and histograms, each with optional labels."""

    def __init__(self, namespace: str = "bx") -> None:
        self.namespace = namespace
        self.registry = CollectorRegistry(auto_describe=True)
        self._help: dict[str, str] = {}
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._histograms: dict[str, Histogram] = {}

    def describe(self, name: str, text: str) -> None:
        """Set the HELP text of metric ``name`` (before its first use)."""
        self._help[name] = text

    def inc(self, name: str, amount: float = 1.0, labels: _Labels = None) -> None:
        """Add ``amount`` to counter ``name``."""
        self._series(self._counters, Counter, name, labels).inc(amount)

    def set(self, name: str, value: float, labels: _Labels = None) -> None:
        """Set gauge ``name``."""
        self._series(self._gauges, Gauge, name, labels).set(value)

    def observe(self, name: str, value: float, labels: _Labels = None) -> None:
        """Add ``value`` (seconds) to histogram ``name``."""
        self._series(self._histograms, _latency_histogram, name, labels).observe(value)

    def _series(
        self,
        made: dict[str, _Metric],
        make: Callable[..., _Metric],
        name: str,
        labels: _Labels,
    ) -> _Metric:
        """The series of metric ``name`` (in ``made``, else made by ``make`` in this registry
        with the label names of ``labels``) that ``labels`` name."""
        metric = made.get(name)
        if metric is None:
            metric = made[name] = make(
                name.removesuffix("_total"),  # a counter adds the suffix itself
                self._help.get(name, name.replace("_", " ")),
                sorted(labels or ()),
                namespace=self.namespace,
                registry=self.registry,
            )
        return metric.labels(**labels) if labels else metric

    @contextlib.contextmanager
    def timed(self, name: str, labels: _Labels = None) -> Iterator[None]:
        """Observe the seconds the block takes in histogram ``name``, also when it raises."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(name, time.perf_counter() - started, labels)

    def value(self, name: str, labels: _Labels = None) -> float:
        """The current value of a counter or gauge, or a histogram's count (0 when never set)."""
        full = f"{self.namespace}_{name}"
        if name in self._histograms:
            full += "_count"
        found = self.registry.get_sample_value(full, dict(labels or {}))
        return 0.0 if found is None else found

    def render(self) -> str:
        """Everything in the Prometheus text exposition format."""
        return generate_latest(self.registry).decode()


@contextlib.asynccontextmanager
async def serve_metrics(metrics: Metrics, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``GET /metrics`` on ``host:port`` (0: a free port) while in the block; its URL."""
    async with serving(make_asgi_app(metrics.registry), host, port) as url:
        yield f"{url}/metrics"
