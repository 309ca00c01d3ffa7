"""A local Apache Kafka cluster in KRaft mode, run from the official jars.

The jars are resolved from Maven Central through ``deploy/kafka/pom.xml`` and
cached; each node runs as a Java process on loopback with free ports, its data
in a directory of its own and its log in a file. Every node has three listeners:

- ``ADMIN``: plaintext, for the administrator and between brokers (super user);
- ``CLIENT``: SASL/SCRAM-SHA-512, checked by Kafka's StandardAuthorizer, where
  every participant uses its own principal;
- ``CONTROLLER``: the KRaft quorum.

With ``tls=True`` two more listeners serve certificates of a local CA (see
``tls_ca``): ``SSL`` (mutual TLS, the principal is the client certificate's CN)
and ``SASL_SSL`` (SCRAM-SHA-512 inside TLS), both under the same authorizer.

About 600 lines, because fetching the jars, writing each node's configuration, and
starting, waiting for and stopping the Java processes are one lifecycle over the same
``ClusterInfo``.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Final

from border_exchange.errors import LauncherError

KAFKA_VERSION: Final = "4.4.0"
ADMIN_USER: Final = "admin"
_MAIN_CLASS: Final = "kafka.Kafka"
_STORAGE_TOOL: Final = "kafka.tools.StorageTool"
_STATE_FILE: Final = "cluster.json"


@dataclass(frozen=True)
class NodeInfo:
    """One running broker+controller process."""

    node_id: int
    pid: int
    admin_port: int
    client_port: int
    controller_port: int
    data_dir: str
    log_file: str
    ssl_port: int | None = None
    sasl_ssl_port: int | None = None


@dataclass(frozen=True)
class ClusterInfo:
    """Where a running local cluster listens and how to log in to it."""

    base_dir: str
    admin_user: str
    admin_password: str
    nodes: tuple[NodeInfo, ...] = field(default_factory=tuple)
    kafka_version: str = KAFKA_VERSION
    ca_file: str | None = None
    """The local CA's certificate, when the cluster has TLS listeners."""
    tls_dir: str | None = None
    """Where the CA (with its key) and the broker certificate are kept."""

    @property
    def admin_bootstrap(self) -> str:
        """Bootstrap servers of the plaintext administrator listener."""
        return ",".join(f"127.0.0.1:{n.admin_port}" for n in self.nodes)

    @property
    def client_bootstrap(self) -> str:
        """Bootstrap servers of the SASL/SCRAM listener with the authorizer."""
        return ",".join(f"127.0.0.1:{n.client_port}" for n in self.nodes)

    @property
    def ssl_bootstrap(self) -> str:
        """Bootstrap servers of the mutual-TLS listener ('' without TLS)."""
        return ",".join(f"127.0.0.1:{n.ssl_port}" for n in self.nodes if n.ssl_port)

    @property
    def sasl_ssl_bootstrap(self) -> str:
        """Bootstrap servers of the SASL/SCRAM-over-TLS listener ('' without TLS)."""
        return ",".join(f"127.0.0.1:{n.sasl_ssl_port}" for n in self.nodes if n.sasl_ssl_port)

    def to_json(self) -> str:
        """Serialise for the state file that ``dev kafka stop|status`` reads."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterInfo:
        """Read a state file written by :meth:`to_json`."""
        raw = json.loads(text)
        nodes = tuple(NodeInfo(**n) for n in raw.pop("nodes"))
        return cls(nodes=nodes, **raw)


# --------------------------------------------------------------------------- jars


def project_root() -> Path:
    """The source checkout this package runs from (where ``deploy/`` lives)."""
    override = os.environ.get("BX_PROJECT_ROOT")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3]


def pom_file() -> Path:
    """The Maven project that names the broker's jars."""
    return project_root() / "deploy" / "kafka" / "pom.xml"


def cache_dir() -> Path:
    """Where resolved Kafka jars are kept between runs, one folder per version and pom."""
    base = os.environ.get("BX_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "border-exchange"
    )
    try:
        pom = hashlib.sha256(pom_file().read_bytes()).hexdigest()[:10]
    except OSError:
        pom = "nopom"
    return Path(base) / f"kafka-{KAFKA_VERSION}-{pom}"


def _require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LauncherError(f"'{name}' was not found on PATH. {hint}")
    return path


def java_executable() -> str:
    """The ``java`` to run Kafka with: ``$JAVA_HOME/bin/java`` or the one on PATH (17+)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return _require_tool(
        "java",
        "Kafka 4 needs Java 17 or newer: install it "
        "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME.",
    )


def resolve_jars() -> Path:
    """The directory of Kafka's jars, fetched with Maven on first use and cached."""
    lib = cache_dir() / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    pom = pom_file()
    if not pom.exists():
        raise LauncherError(
            f"cannot find {pom}: run from a source checkout or set BX_PROJECT_ROOT to one."
        )
    mvn = _require_tool(
        "mvn", "The launcher fetches Kafka's jars with Maven: install it (apt-get install maven)."
    )
    staging = lib.with_name("lib.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        f"-Dkafka.version={KAFKA_VERSION}",
    ]  # fmt: skip
    print(f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (first run only)...")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise LauncherError(
            "could not fetch the Kafka jars with Maven (is Maven Central reachable? a proxy "
            f"set in ~/.m2/settings.xml?). Maven said:\n{tail}"
        )
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    marker.write_text(KAFKA_VERSION)
    return lib


# ------------------------------------------------------------------------ config


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int) -> None:
    """Raise a clear error when ``port`` is taken on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise LauncherError(
                f"port {port} on 127.0.0.1 is already in use ({exc.strerror}); stop what uses it "
                "or let the launcher choose free ports (omit --port)."
            ) from exc


def _cluster_id() -> str:
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class _TlsListeners:
    ssl_port: int
    sasl_ssl_port: int
    keystore: Path
    truststore: Path


def _tls_properties(tls: _TlsListeners) -> dict[str, str]:
    return {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.truststore),
        "listener.name.ssl.ssl.client.auth": "required",
        # ACL principals are the certificate's CN: O=...,CN=CAF.gateway -> User:CAF.gateway.
        "ssl.principal.mapping.rules": "RULE:^(.*,)?CN=([^,]+)(,.*)?$/$2/,DEFAULT",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
    }


def _server_properties(
    node: int,
    ports: dict[int, tuple[int, int, int]],
    data_dir: Path,
    nodes: int,
    tls: _TlsListeners | None = None,
    overrides: Mapping[str, str] | None = None,
) -> str:
    admin, client, controller = ports[node]
    voters = ",".join(f"{n}@127.0.0.1:{p[2]}" for n, p in sorted(ports.items()))
    replication = min(nodes, 3)
    min_isr = 1 if nodes == 1 else 2
    lines = {
        "process.roles": "broker,controller",
        "node.id": str(node),
        "controller.quorum.voters": voters,
        "listeners": (
            f"ADMIN://127.0.0.1:{admin},CLIENT://127.0.0.1:{client},"
            f"CONTROLLER://127.0.0.1:{controller}"
        ),
        "advertised.listeners": f"ADMIN://127.0.0.1:{admin},CLIENT://127.0.0.1:{client}",
        "listener.security.protocol.map": (
            "ADMIN:PLAINTEXT,CLIENT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "inter.broker.listener.name": "ADMIN",
        "controller.listener.names": "CONTROLLER",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.client.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.client.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # The plaintext listeners are loopback-only: their ANONYMOUS principal is the
        # administrator and the brokers themselves.
        "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(data_dir / "data"),
        "metadata.log.dir": str(data_dir / "meta"),
        "num.partitions": "3",
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replication),
        "offsets.topic.num.partitions": "10",
        # One node needs RF 1 and min ISR 1 here, or transactional producers hang.
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(min_isr),
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "-1",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "controlled.shutdown.enable": "true",
    }
    if tls is not None:
        extra = f",SSL://127.0.0.1:{tls.ssl_port},SASL_SSL://127.0.0.1:{tls.sasl_ssl_port}"
        lines["listeners"] += extra
        lines["advertised.listeners"] += extra
        lines["listener.security.protocol.map"] += ",SSL:SSL,SASL_SSL:SASL_SSL"
        lines.update(_tls_properties(tls))
    lines.update(overrides or {})
    return "".join(f"{k}={v}\n" for k, v in lines.items())


COMPRESSED_CLOCK: Final = {
    "log.retention.check.interval.ms": "500",
    "log.cleaner.backoff.ms": "500",
    "log.segment.delete.delay.ms": "0",
    "log.initial.task.delay.ms": "0",
}
"""Broker settings for tests of retention and compaction in seconds: the broker looks for
expired segments and for logs to clean twice a second, and deletes files at once."""


def _log4j_properties(log_file: Path) -> str:
    # log4j2 reads .properties natively; YAML would need jackson-dataformat-yaml on the path.
    return (
        "status = warn\n"
        "appender.file.type = File\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {log_file}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = file\n"
        "logger.request.name = kafka.request.logger\n"
        "logger.request.level = WARN\n"
    )


# ----------------------------------------------------------------------- process


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM this child when its parent dies (no broker outlives a test run)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _java_command(lib: Path, config: Path, log_config: Path, heap: str) -> list[str]:
    return [
        java_executable(),
        f"-Xmx{heap}",
        "-Xms256m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log_config}",
        "-cp",
        f"{lib}/*",
        _MAIN_CLASS,
        str(config),
    ]


def _format_storage(lib: Path, config: Path, cluster_id: str, password: str) -> None:
    cmd = [
        java_executable(), "-Xmx256m", "-cp", f"{lib}/*", _STORAGE_TOOL, "format",
        "-t", cluster_id, "-c", str(config), "--ignore-formatted",
        "--add-scram", f"SCRAM-SHA-512=[name={ADMIN_USER},password={password}]",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LauncherError(
            f"formatting Kafka storage failed ({config}):\n"
            f"{(result.stdout + result.stderr)[-2000:]}"
        )


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _log_tail(path: str, lines: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_cluster(
    nodes: int = 1,
    base_dir: Path | None = None,
    *,
    heap: str = "768m",
    detach: bool = False,
    timeout: float = 90.0,
    client_ports: Sequence[int] | None = None,
    tls: bool = False,
    tls_dir: Path | None = None,
    overrides: Mapping[str, str] | None = None,
) -> ClusterInfo:
    """Start a local cluster of ``nodes`` combined broker+controller nodes and wait until ready.

    With ``detach`` the processes survive this one (for ``dev kafka start``);
    otherwise Linux stops them when the starting process dies. With ``tls`` the
    nodes also listen with mutual TLS and with SASL_SSL, with certificates of a
    local CA made in ``tls_dir`` (default ``<base_dir>/tls``); a CA already there
    is reused, so client certificates issued by it stay valid. ``overrides`` are broker
    settings that replace the launcher's (e.g. ``COMPRESSED_CLOCK``).
    """
    if nodes not in (1, 3):
        raise LauncherError(f"a local cluster has 1 or 3 nodes, not {nodes}")
    lib = resolve_jars()
    base = Path(base_dir) if base_dir else Path(_mkdtemp())
    base.mkdir(parents=True, exist_ok=True)
    if client_ports is not None:
        for port in client_ports:
            ensure_port_free(port)
    ports: dict[int, tuple[int, int, int]] = {}
    for i, node in enumerate(range(1, nodes + 1)):
        client = client_ports[i] if client_ports else free_port()
        ports[node] = (free_port(), client, free_port())
    tls_ports: dict[int, _TlsListeners] = {}
    ca_file: str | None = None
    tls_path: Path | None = None
    if tls:
        tls_path = Path(tls_dir) if tls_dir else base / "tls"
        keystore, truststore = _broker_certificates(tls_path)
        ca_file = str(truststore)
        for node in ports:
            tls_ports[node] = _TlsListeners(free_port(), free_port(), keystore, truststore)
    password = secrets.token_urlsafe(18)
    cluster_id = _cluster_id()
    infos: list[NodeInfo] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for node in ports:
            node_dir = base / f"node-{node}"
            node_dir.mkdir(parents=True, exist_ok=True)
            config = node_dir / "server.properties"
            node_tls = tls_ports.get(node)
            config.write_text(_server_properties(node, ports, node_dir, nodes, node_tls, overrides))
            log_file = node_dir / "kafka.log"
            log_config = node_dir / "log4j2.properties"
            log_config.write_text(_log4j_properties(log_file))
            _format_storage(lib, config, cluster_id, password)
            stdout = (node_dir / "stdout.log").open("ab")
            proc = subprocess.Popen(
                _java_command(lib, config, log_config, heap),
                stdout=stdout,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=detach,
                preexec_fn=None if detach else die_with_parent,
            )
            stdout.close()
            procs.append(proc)
            admin, client, controller = ports[node]
            node_info = NodeInfo(
                node, proc.pid, admin, client, controller, str(node_dir), str(log_file),
                node_tls.ssl_port if node_tls else None,
                node_tls.sasl_ssl_port if node_tls else None,
            )  # fmt: skip
            infos.append(node_info)
        info = ClusterInfo(
            str(base), ADMIN_USER, password, tuple(infos),
            ca_file=ca_file, tls_dir=str(tls_path) if tls_path else None,
        )  # fmt: skip
        (base / _STATE_FILE).write_text(info.to_json())
        os.chmod(base / _STATE_FILE, 0o600)
        wait_ready(info, timeout=timeout)
    except BaseException:
        for proc in procs:
            _terminate(proc.pid, grace=5.0)
        raise
    return info


def _broker_certificates(directory: Path) -> tuple[Path, Path]:
    """The broker's PEM keystore and the CA's certificate, made (or reused) in ``directory``."""
    from border_exchange.adapters.tls_ca import Issued, create_ca, issue_server_cert

    ca = Issued(directory / "ca.pem", directory / "ca-key.pem")
    if not (ca.cert_file.exists() and ca.key_file.exists()):
        ca = create_ca(directory)
    server = issue_server_cert(ca, directory)
    return server.bundle_file, ca.cert_file


def _mkdtemp() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="bx-kafka-")


def wait_ready(info: ClusterInfo, timeout: float = 90.0) -> None:
    """Wait until every node listens, answers metadata and passes a produce/consume round trip."""
    from border_exchange.adapters.kafka_probe import round_trip

    deadline = time.monotonic() + timeout
    for node in info.nodes:
        while not _port_open(node.client_port):
            if not _alive(node.pid):
                raise LauncherError(
                    f"Kafka node {node.node_id} exited during start-up; its log "
                    f"({node.log_file}) ends with:\n{_log_tail(node.log_file)}"
                )
            if time.monotonic() > deadline:
                raise LauncherError(
                    f"Kafka node {node.node_id} did not listen within {timeout:.0f}s; see "
                    f"{node.log_file}:\n{_log_tail(node.log_file)}"
                )
            time.sleep(0.2)
    remaining = max(5.0, deadline - time.monotonic())
    try:
        round_trip(info.admin_bootstrap, expected_brokers=len(info.nodes), timeout=remaining)
    except Exception as exc:
        raise LauncherError(
            f"Kafka listens but failed its produce/consume round trip: {exc}; see "
            f"{info.nodes[0].log_file}"
        ) from exc


def _terminate(pid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)


def stop_node(node: NodeInfo, grace: float = 20.0) -> None:
    """Stop one node: SIGTERM, then SIGKILL after ``grace`` seconds."""
    _terminate(node.pid, grace)


def kill_node(node: NodeInfo) -> None:
    """Kill one node at once, as a crash would."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(node.pid, signal.SIGKILL)
    while _alive(node.pid):
        time.sleep(0.05)


def restart_node(info: ClusterInfo, node: NodeInfo, heap: str = "768m") -> ClusterInfo:
    """Start a stopped node again on its old ports and data; return the updated cluster info."""
    lib = resolve_jars()
    node_dir = Path(node.data_dir)
    stdout = (node_dir / "stdout.log").open("ab")
    proc = subprocess.Popen(
        _java_command(lib, node_dir / "server.properties", node_dir / "log4j2.properties", heap),
        stdout=stdout,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    stdout.close()
    new = replace(node, pid=proc.pid)
    nodes = tuple(new if n.node_id == node.node_id else n for n in info.nodes)
    updated = replace(info, nodes=nodes)
    (Path(info.base_dir) / _STATE_FILE).write_text(updated.to_json())
    return updated


def stop_cluster(info: ClusterInfo, grace: float = 20.0, remove: bool = False) -> None:
    """Stop every node (SIGTERM to all, SIGKILL after ``grace``), optionally deleting the data."""
    for node in info.nodes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.pid, signal.SIGTERM)
    for node in info.nodes:
        _terminate(node.pid, grace)
    state = Path(info.base_dir) / _STATE_FILE
    with contextlib.suppress(FileNotFoundError):
        state.unlink()
    if remove:
        shutil.rmtree(info.base_dir, ignore_errors=True)


def read_state(base_dir: Path) -> ClusterInfo | None:
    """The cluster recorded in ``base_dir``, or None when none was started there."""
    state = base_dir / _STATE_FILE
    if not state.exists():
        return None
    return ClusterInfo.from_json(state.read_text())


def running_nodes(info: ClusterInfo) -> Iterator[NodeInfo]:
    """The nodes of ``info`` whose process is still alive."""
    return (n for n in info.nodes if _alive(n.pid))
