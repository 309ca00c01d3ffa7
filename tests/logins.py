"""A bare SASL login to a broker, so a test can tell a refused login from an unreachable one.

aiokafka's clients log a refused login and raise ``KafkaConnectionError`` ("Unable to
bootstrap"), as for a broker that is down; one connection made directly raises the
broker's own answer (``SaslAuthenticationFailed``) or the network's.
"""

from __future__ import annotations

from border_exchange.adapters.kafka_settings import KafkaSettings


async def log_in(settings: KafkaSettings) -> None:
    """Open one connection to the first bootstrap broker with ``settings``, then close it."""
    from aiokafka.conn import create_conn

    host, port = settings.bootstrap.split(",")[0].rsplit(":", 1)
    kwargs = settings.client_kwargs()
    del kwargs["bootstrap_servers"]
    conn = await create_conn(host, int(port), request_timeout_ms=10_000, **kwargs)
    conn.close()
