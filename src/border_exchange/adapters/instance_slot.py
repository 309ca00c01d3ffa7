"""A consumer-group instance id that a router restarted on the same host gets back.

Static membership (KIP-345) gives a member's partitions back at once when it rejoins
with the instance id it had, instead of after the session timeout. The id must be
unique among live members and the same across a restart: ``<host>-<n>``, where ``n``
is the lowest slot whose lock file this process can take. The kernel drops a lock
when its process dies, even by SIGKILL, so a restarted router takes the slot its
predecessor held, and two routers on one host take two slots.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from border_exchange.errors import ConfigError

SLOTS: Final = 64
"""How many routers of one group a host may run."""


@dataclass(frozen=True)
class InstanceSlot:
    """An instance id and the open lock file that holds it (closed with the process)."""

    instance_id: str
    lock: IO[bytes]

    def release(self) -> None:
        """Give the slot up (a process that exits gives it up anyway)."""
        self.lock.close()


def claim_instance_slot(
    group: str, directory: Path | None = None, host: str | None = None
) -> InstanceSlot:
    """The lowest free slot of ``group`` on this host, as ``<host>-<n>``; locked until released."""
    where = directory or Path(tempfile.gettempdir())
    name = host or socket.gethostname()
    tag = hashlib.sha256(group.encode()).hexdigest()[:12]
    for slot in range(SLOTS):
        path = where / f"border-exchange-router-{tag}-{slot}.lock"
        lock = path.open("ab")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        os.chmod(path, 0o600)
        return InstanceSlot(f"{name}-{slot}", lock)
    raise ConfigError(
        f"{SLOTS} routers of group {group} already run on this host: set group_instance_id"
    )


def group_instance(
    setting: str, group: str, directory: Path | None = None
) -> tuple[str | None, InstanceSlot | None]:
    """The instance id that ``group_instance_id: <setting>`` gives, with its slot if claimed.

    ``auto``: this host's lowest free slot; ``none`` or empty: dynamic membership (None);
    anything else: that id, which the operator keeps unique among the routers.
    """
    if setting == "auto":
        slot = claim_instance_slot(group, directory)
        return slot.instance_id, slot
    if setting in ("none", ""):
        return None, None
    return setting, None
