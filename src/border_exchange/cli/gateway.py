"""``border-exchange gateway serve|token|openapi``: a national service's gateway over HTTP."""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from border_exchange.adapters.gateway_store import GatewayStore
from border_exchange.bootstrap import (
    GATEWAY_ENV_PREFIX,
    GatewayServerConfig,
    build_gateway,
    gateway_server_config,
)
from border_exchange.cli.commands import Commands, command_group, config_command
from border_exchange.cli.logs import configure_from
from border_exchange.errors import ConfigError

log = structlog.get_logger("border_exchange.gateway")


def register(subparsers: Commands) -> None:
    """Add ``gateway serve``, ``gateway token add|list|revoke`` and ``gateway openapi``."""
    commands = command_group(
        subparsers, "gateway", "a national service's gateway over HTTP", metavar="COMMAND"
    )

    config_command(
        commands,
        "serve",
        "serve the HTTP API (POST /alerts, cancel, status, health, metrics)",
        description=(
            "Serves the gateway's HTTP API until SIGTERM. Every request needs a bearer token "
            "(see 'gateway token add'); 202 is answered once the outbox transaction has "
            "committed, 503 with Retry-After when the broker stays unreachable."
        ),
        config=GatewayServerConfig,
        env_prefix=GATEWAY_ENV_PREFIX,
        example_key="port",
        handler=_serve,
        what="gateway",
    )

    tokens = command_group(commands, "token", "manage the national systems' bearer tokens")
    for name, text, handler in (
        ("add", "make a token for a client (printed once, stored as its SHA-256)", _token_add),
        ("list", "list the clients and whether their token is valid", _token_list),
        ("revoke", "revoke a client's token now", _token_revoke),
    ):
        command = tokens.add_parser(name, help=text)
        command.add_argument("--config", required=True, type=Path, help="gateway configuration")
        if name != "list":
            command.add_argument("client", metavar="CLIENT", help="the client's name")
        command.set_defaults(handler=handler)

    openapi = commands.add_parser("openapi", help="print or write the OpenAPI document")
    openapi.add_argument("--out", type=Path, help="write it here (default: print it)")
    openapi.set_defaults(handler=_openapi)


def _store(config_path: Path) -> GatewayStore:
    _, config = gateway_server_config(config_path)
    return GatewayStore(config.state_db)


def _token_add(args: argparse.Namespace) -> int:
    store = _store(args.config)
    try:
        token = store.add_client(args.client)
    finally:
        store.close()
    print(token)
    print(
        f"token of {args.client}: shown only now; the gateway keeps only its SHA-256",
        file=sys.stderr,
    )
    return 0


def _token_list(args: argparse.Namespace) -> int:
    store = _store(args.config)
    try:
        clients = store.clients()
    finally:
        store.close()
    for client in clients:
        state = f"revoked {client.revoked_at}" if client.revoked_at else "valid"
        print(f"{client.name}\tcreated {client.created_at}\t{state}")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    store = _store(args.config)
    try:
        store.revoke_client(args.client)
    finally:
        store.close()
    print(f"revoked the token of {args.client}")
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from border_exchange.services.gateway_http import render_openapi

    text = render_openapi()
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


def _ssl_options(config: GatewayServerConfig) -> dict[str, object]:
    if config.tls_cert is None:
        if config.tls_client_ca is not None:
            raise ConfigError("tls_client_ca needs tls_cert and tls_key (mTLS runs over HTTPS)")
        return {}
    if config.tls_key is None:
        raise ConfigError("tls_cert needs tls_key")
    options: dict[str, object] = {
        "ssl_certfile": str(config.tls_cert),
        "ssl_keyfile": str(config.tls_key),
    }
    if config.tls_client_ca is not None:
        options["ssl_ca_certs"] = str(config.tls_client_ca)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, for which SIGTERM is the normal end: exit 0, not the signal."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises captured signals once shut down; ours ends cleanly instead
            self._captured_signals.clear()

    return Server


async def serve(config_path: Path) -> int:
    """Run the HTTP gateway of ``config_path`` until SIGTERM or SIGINT."""
    import uvicorn

    from border_exchange.services.gateway_http import GatewayApi, create_app

    _Server = _server_class()
    kafka, config = gateway_server_config(config_path)
    ssl_options = _ssl_options(config)
    store = GatewayStore(config.state_db)
    try:
        async with build_gateway(kafka, config) as gateway:
            api = GatewayApi(
                gateway, store, rate_per_second=config.rate_per_second, burst=config.burst
            )
            server = _Server(
                uvicorn.Config(
                    create_app(api),
                    host=config.host,
                    port=config.port,
                    log_config=None,
                    access_log=False,
                    server_header=False,
                    **ssl_options,  # type: ignore[arg-type]  # typed per key by uvicorn
                )
            )
            scheme = "https" if ssl_options else "http"
            log.info("gateway.serve", url=f"{scheme}://{config.host}:{config.port}/")
            await server.serve()
            await api.close()  # every request taken has its outcome before the gateway stops
    finally:
        store.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    configure_from(args)
    return asyncio.run(serve(args.config))
