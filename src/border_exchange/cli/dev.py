"""``border-exchange dev kafka start|stop|status``: a local Kafka cluster for development."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_launcher import ClusterInfo
from border_exchange.cli.commands import Commands, command_group
from border_exchange.errors import LauncherError


def default_dir() -> Path:
    """Where ``dev kafka`` keeps its cluster: ``$BX_HOME/kafka`` or ``./.bx/kafka``."""
    return Path(os.environ.get("BX_HOME", ".bx")) / "kafka"


def register(subparsers: Commands) -> None:
    """Add ``dev kafka start|stop|status``."""
    dev_sub = command_group(
        subparsers,
        "dev",
        "development helpers (a local Kafka cluster)",
        metavar="COMMAND",
        required=False,
    )
    kafka = dev_sub.add_parser(
        "kafka",
        help="start, stop or inspect a local Apache Kafka cluster (KRaft, loopback only)",
        description=(
            "Runs Apache Kafka from its official jars (fetched once from Maven Central with "
            "Maven, then cached) with Java 17+. Each node listens on 127.0.0.1 with a plaintext "
            "administrator listener and a SASL/SCRAM-SHA-512 listener checked by Kafka's "
            "StandardAuthorizer."
        ),
    )
    kafka_sub = kafka.add_subparsers(title="actions", metavar="ACTION")

    start = kafka_sub.add_parser("start", help="start a cluster and print how to reach it")
    start.add_argument("--nodes", type=int, choices=(1, 3), default=1, help="cluster size")
    start.add_argument("--dir", type=Path, default=None, help="data and state directory")
    start.add_argument(
        "--port", type=int, default=None, help="SASL client port of a one-node cluster"
    )
    start.add_argument("--heap", default="768m", help="Java heap per node (default 768m)")
    start.set_defaults(handler=_start)

    stop = kafka_sub.add_parser("stop", help="stop the cluster (SIGTERM, then kill)")
    stop.add_argument("--dir", type=Path, default=None, help="data and state directory")
    stop.add_argument("--purge", action="store_true", help="also delete the data directory")
    stop.set_defaults(handler=_stop)

    status = kafka_sub.add_parser("status", help="show whether the cluster runs and answers")
    status.add_argument("--dir", type=Path, default=None, help="data and state directory")
    status.set_defaults(handler=_status)


def _describe(info: ClusterInfo) -> str:
    return "\n".join(
        [
            f"Kafka {info.kafka_version}, {len(info.nodes)} node(s), data in {info.base_dir}",
            f"  admin listener (plaintext, super user): {info.admin_bootstrap}",
            f"  client listener (SASL_PLAINTEXT, SCRAM-SHA-512): {info.client_bootstrap}",
            f"  admin user: {info.admin_user}",
            f"  admin password: {info.admin_password}",
            f"  environment: source {Path(info.base_dir) / 'kafka.env'}",
        ]
    )


def _env_file(info: ClusterInfo) -> str:
    return (
        f"export BX_KAFKA_BOOTSTRAP={info.client_bootstrap}\n"
        "export BX_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT\n"
        f"export BX_KAFKA_ADMIN_USERNAME={info.admin_user}\n"
        f"export BX_KAFKA_ADMIN_PASSWORD={info.admin_password}\n"
        f"export BX_KAFKA_ADMIN_BOOTSTRAP={info.admin_bootstrap}\n"
    )


def _start(args: argparse.Namespace) -> int:
    base, existing = _recorded(args)
    if existing is not None and any(kafka_launcher.running_nodes(existing)):
        print("already running:")
        print(_describe(existing))
        return 0
    if args.port is not None and args.nodes != 1:
        raise LauncherError("--port applies to a one-node cluster only")
    started = time.monotonic()
    info = kafka_launcher.start_cluster(
        args.nodes,
        base,
        heap=args.heap,
        detach=True,
        client_ports=None if args.port is None else [args.port],
    )
    env_path = Path(info.base_dir) / "kafka.env"
    env_path.write_text(_env_file(info))
    env_path.chmod(0o600)
    print(f"started in {time.monotonic() - started:.1f}s")
    print(_describe(info))
    return 0


def _recorded(args: argparse.Namespace) -> tuple[Path, kafka_launcher.ClusterInfo | None]:
    """The cluster directory asked for (``--dir``), and the cluster recorded there if any."""
    base = (args.dir or default_dir()).resolve()
    return base, kafka_launcher.read_state(base)


def _stop(args: argparse.Namespace) -> int:
    base, info = _recorded(args)
    if info is None:
        print(f"no cluster recorded in {base}; nothing to stop")
        return 0
    kafka_launcher.stop_cluster(info, remove=args.purge)
    print(f"stopped {len(info.nodes)} node(s)" + (" and deleted the data" if args.purge else ""))
    return 0


def _status(args: argparse.Namespace) -> int:
    base, info = _recorded(args)
    if info is None:
        print(f"not running (no cluster recorded in {base})")
        return 1
    alive = {n.node_id for n in kafka_launcher.running_nodes(info)}
    print(_describe(info))
    for node in info.nodes:
        state = "running" if node.node_id in alive else "stopped"
        print(f"  node {node.node_id}: {state} (pid {node.pid}, log {node.log_file})")
    return 0 if len(alive) == len(info.nodes) else 1
