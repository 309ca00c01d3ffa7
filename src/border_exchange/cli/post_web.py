"""``post serve``, ``post user`` and ``post log``: the officers' page, accounts and log.

The officers and the consultation log live in a file beside the store (``--db``'s name
plus ``.officers``). ``post serve`` listens on loopback unless told otherwise, and
elsewhere only with TLS (``--tls-cert``/``--tls-key``) or ``--insecure-plain-http``.
Given the post's key (``--participant``, ``--post``, ``--key``, ``--trust``), its alert
pages take hit reports, queued for ``post run`` to send.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from border_exchange.adapters.officer_db import OfficerDB, Role, officers_path
from border_exchange.cli.commands import Commands, command_group
from border_exchange.cli.logs import add_log_options, configure_from
from border_exchange.cli.post_hits import checked_post, load_reporter
from border_exchange.domain.consultation import verify
from border_exchange.errors import ConfigError
from border_exchange.services.hits import Reporter


def register(commands: Commands) -> None:
    """Add ``post serve``, ``post user add|list|disable|enable`` and ``post log``."""
    serve = commands.add_parser("serve", help="the officers' web page over the local store")
    serve.add_argument("--db", required=True, type=Path, help="the post's SQLite store file")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    serve.add_argument("--port", type=int, default=8480, help="port (default 8480)")
    serve.add_argument("--tls-cert", type=Path, help="certificate (PEM) to serve HTTPS")
    serve.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    serve.add_argument(
        "--insecure-plain-http",
        action="store_true",
        help="allow plain HTTP on a non-loopback address (a closed network only)",
    )
    hit = serve.add_argument_group(
        "hit reports",
        "with these, an officer reports a hit on an alert's page: checked as 'post report-hit' "
        "checks it, signed with the post's key (passphrase from BX_KEY_PASSPHRASE or a "
        "prompt, once at start) and queued for 'post run' to send; without them the page "
        "takes no hit report",
    )
    hit.add_argument("--participant", help="the post's service, e.g. CAF")
    hit.add_argument("--post", help="the post's name, e.g. bangui-port")
    hit.add_argument("--key", type=Path, help="the post's private key file")
    hit.add_argument("--key-id", help="the post's key id (default: its current key in --trust)")
    hit.add_argument("--trust", type=Path, help="trust store YAML file")
    add_log_options(serve)
    serve.set_defaults(handler=run_serve)

    users = command_group(commands, "user", "officers' accounts for the web page")
    add = users.add_parser("add", help="create an account (password asked, or from stdin)")
    add.add_argument("--db", required=True, type=Path, help="the post's SQLite store file")
    add.add_argument("name", help="the officer's login name")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.OFFICER.value)
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.set_defaults(handler=run_user_add)
    for verb, disabled in (("disable", True), ("enable", False)):
        change = users.add_parser(verb, help=f"{verb} an account")
        change.add_argument("--db", required=True, type=Path, help="the post's SQLite store file")
        change.add_argument("name")
        change.set_defaults(handler=run_user_disable, disabled=disabled)
    listing = users.add_parser("list", help="list the accounts")
    listing.add_argument("--db", required=True, type=Path, help="the post's SQLite store file")
    listing.set_defaults(handler=run_user_list)

    logs = command_group(commands, "log", "the consultation log: list, export, verify")
    for verb, handler, text in (
        ("list", run_log_list, "print the searches, oldest first"),
        ("export", run_log_export, "write the log as JSON lines (for the data-protection officer)"),
        ("verify", run_log_verify, "check the hash chain (exit 1 when broken)"),
    ):
        command = logs.add_parser(verb, help=text)
        command.add_argument("--db", required=True, type=Path, help="the post's SQLite store file")
        if verb == "export":
            command.add_argument("--out", type=Path, help="file to write (default: stdout)")
        command.set_defaults(handler=handler)


def _officers(db: Path) -> OfficerDB:
    return OfficerDB(officers_path(db))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    """Serve the page until interrupted."""
    import uvicorn

    from border_exchange.web.app import PostSite, create_app

    tls = args.tls_cert is not None or args.tls_key is not None
    if tls and (args.tls_cert is None or args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    if not _is_loopback(args.host) and not tls and not args.insecure_plain_http:
        raise ConfigError(
            f"--host {args.host}: listening beyond this machine needs --tls-cert and "
            "--tls-key (or, on a closed network, --insecure-plain-http)"
        )
    if not args.db.exists():
        raise ConfigError(f"no post store at {args.db} (run 'border-exchange post run' first)")
    configure_from(args)
    site = PostSite(args.db, officers_path(args.db), secure_cookies=tls, reporter=_reporter(args))
    scheme = "https" if tls else "http"
    print(f"post page: {scheme}://{args.host}:{args.port}/", flush=True)
    uvicorn.run(
        create_app(site),
        host=args.host,
        port=args.port,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
        log_level="warning",
        log_config=None,  # its warnings go through the process's logging (--log-format)
        server_header=False,
    )
    return 0


def _reporter(args: argparse.Namespace) -> Reporter | None:
    """The post's signing identity when ``--key`` is given (with its companions), else None."""
    given = [args.participant, args.post, args.key, args.trust]
    if not any(given) and args.key_id is None:
        return None
    if not all(given):
        raise ConfigError("hit reports on the page need --participant, --post, --key and --trust")
    participant, post = checked_post(args)
    return load_reporter(args, participant, post, datetime.now(UTC))


def run_user_add(args: argparse.Namespace) -> int:
    """Create an account; the password is read without echo (or from stdin)."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    with _officers(args.db) as officers:
        officers.add(args.name, password, Role(args.role))
    print(f"officer {args.name} added ({args.role})")
    return 0


def run_user_disable(args: argparse.Namespace) -> int:
    """Disable (ending its sessions) or enable an account."""
    with _officers(args.db) as officers:
        officers.set_disabled(args.name, args.disabled)
    print(f"officer {args.name} {'disabled' if args.disabled else 'enabled'}")
    return 0


def run_user_list(args: argparse.Namespace) -> int:
    """Print every account: name, role, state."""
    with _officers(args.db) as officers:
        for officer in officers.officers():
            state = "disabled" if officer.disabled else "active"
            if officer.locked_until is not None:
                state += f", locked until {officer.locked_until.isoformat()}"
            print(f"{officer.name}\t{officer.role.value}\t{state}")
    return 0


def run_log_list(args: argparse.Namespace) -> int:
    """Print the consultation log, one search a line."""
    with _officers(args.db) as officers:
        for entry in officers.entries():
            s = entry.search
            hits = ",".join(s.hits) or "-"
            dob = f" dob={s.dob}" if s.dob else ""
            print(
                f"{entry.seq}\t{s.at.isoformat()}\t{s.officer}\t{s.channel}\t{s.kind}="
                f"{s.query!r}{dob}\t{s.outcome}\t{hits}"
            )
    return 0


def run_log_export(args: argparse.Namespace) -> int:
    """Write the log as JSON lines, each entry with its chain link and hash."""
    with _officers(args.db) as officers:
        lines = [json.dumps(e.as_record(), ensure_ascii=False) for e in officers.entries()]
    text = "".join(line + "\n" for line in lines)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"{len(lines)} entries written to {args.out}", file=sys.stderr)
    return 0


def run_log_verify(args: argparse.Namespace) -> int:
    """Check the chain; print each break; exit 1 when there is one."""
    with _officers(args.db) as officers:
        entries = officers.entries()
    problems = verify(entries)
    for problem in problems:
        print(problem)
    if problems:
        print(f"consultation log ALTERED: {len(problems)} problem(s) in {len(entries)} entries")
        return 1
    last = entries[-1].hash if entries else "-"
    print(f"consultation log intact: {len(entries)} entries, last hash {last}")
    return 0
