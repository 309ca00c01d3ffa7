"""``border-exchange router run``: route every outbox to the partner feeds until stopped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time

import structlog

from border_exchange.adapters.metrics import serve_metrics
from border_exchange.adapters.process_clock import process_age
from border_exchange.bootstrap import ROUTER_ENV_PREFIX, RouterConfig, build_router
from border_exchange.cli.commands import Commands, command_group, config_command
from border_exchange.cli.logs import configure_from
from border_exchange.interpreter import tune_garbage_collector

log = structlog.get_logger("border_exchange.router")


def register(subparsers: Commands) -> None:
    """Add ``router run``."""
    router_sub = command_group(
        subparsers,
        "router",
        "the policy engine that routes alerts (hub)",
        metavar="COMMAND",
        required=False,
    )
    config_command(
        router_sub,
        "run",
        "route outboxes to partner feeds, exactly once, until SIGTERM",
        description=(
            "Reads every participant's outbox (read_committed), checks each record (format, "
            "origin, signature with a key valid at issue time, expiry, clock skew, replay, "
            "lifecycle), applies the agreements in force and writes each permitted partner's "
            "redacted copy, the quarantine and the audit chain (which carries every consumed "
            "offset) in one transaction. SIGTERM finishes the current transaction and exits."
        ),
        config=RouterConfig,
        env_prefix=ROUTER_ENV_PREFIX,
        example_key="batch_size",
        handler=_run,
        what="router",
    )


async def _serve(args: argparse.Namespace) -> int:
    # The restart's timeline (docs/router.md, *Failover*): each step's log says how long
    # the process had run by then, its interpreter start and imports included.
    log.info(
        "router.starting", process_age=process_age(), process_cpu=round(time.process_time(), 3)
    )
    app = build_router(args.config)
    tune_garbage_collector()
    log.info("router.configured", process_age=process_age())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        if app.config.metrics_port:
            url = await stack.enter_async_context(
                serve_metrics(app.router.metrics, app.config.metrics_host, app.config.metrics_port)
            )
            log.info("router.metrics", url=url)
        await app.router.run(stop)
    return 0


def _run(args: argparse.Namespace) -> int:
    configure_from(args)
    return asyncio.run(_serve(args))
