"""The router's group instance id: unique among the routers of a host, and the same after a
restart, even after SIGKILL (static membership gives the partitions back at once)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from border_exchange.adapters.instance_slot import claim_instance_slot, group_instance
from border_exchange.bootstrap import _router_config
from border_exchange.errors import ConfigError

BASE = {"trust_store": "t.yaml", "agreements": "a.yaml", "signing_key": "hub.pem"}


def test_two_routers_on_one_host_take_two_slots_and_a_freed_slot_is_taken_again(
    tmp_path: Path,
) -> None:
    first = claim_instance_slot("bx.hub.router", tmp_path, host="hub-a")
    second = claim_instance_slot("bx.hub.router", tmp_path, host="hub-a")
    assert (first.instance_id, second.instance_id) == ("hub-a-0", "hub-a-1")
    # Another group's routers count their own slots.
    assert claim_instance_slot("bx.hub.router.b", tmp_path, host="hub-a").instance_id == "hub-a-0"

    first.release()

    assert claim_instance_slot("bx.hub.router", tmp_path, host="hub-a").instance_id == "hub-a-0"


def test_a_router_killed_with_sigkill_leaves_its_slot_to_the_next_one(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from border_exchange.adapters.instance_slot import claim_instance_slot
            slot = claim_instance_slot("g", Path({str(tmp_path)!r}), host="h")
            print(slot.instance_id, flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"h-0"
        assert claim_instance_slot("g", tmp_path, host="h").instance_id == "h-1"  # held
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert claim_instance_slot("g", tmp_path, host="h").instance_id == "h-0"
    finally:
        holder.kill()


def test_the_setting_chooses_static_or_dynamic_membership(tmp_path: Path) -> None:
    instance, slot = group_instance("auto", "g", tmp_path)
    assert slot is not None
    assert instance == slot.instance_id
    assert instance.endswith("-0")
    assert group_instance("router-east", "g", tmp_path) == ("router-east", None)
    assert group_instance("none", "g", tmp_path) == (None, None)


def test_failover_settings_have_defaults_and_heartbeats_must_fit_the_session(
    tmp_path: Path,
) -> None:
    config = _router_config(BASE, tmp_path, {})
    assert (config.session_timeout, config.heartbeat_interval) == (6.0, 1.0)
    assert config.group_instance_id == "auto"
    overridden = _router_config(BASE, tmp_path, {"BX_ROUTER_SESSION_TIMEOUT": "12"})
    assert overridden.session_timeout == 12.0
    with pytest.raises(ConfigError, match=r"heartbeat_interval 3\.0 s must be at most a third"):
        _router_config({**BASE, "heartbeat_interval": 3}, tmp_path, {})


def test_accepted_audit_gaps_come_from_the_file_or_a_comma_separated_variable(
    tmp_path: Path,
) -> None:
    gaps = ["bx.CAF.outbox/0@12", "bx.COD.outbox/2@7"]
    assert _router_config(
        {**BASE, "audit_gaps_accepted": gaps}, tmp_path, {}
    ).audit_gaps_accepted == tuple(gaps)
    env = {"BX_ROUTER_AUDIT_GAPS_ACCEPTED": " bx.CAF.outbox/0@12, bx.COD.outbox/2@7 "}
    assert _router_config(BASE, tmp_path, env).audit_gaps_accepted == tuple(gaps)
