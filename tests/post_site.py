"""A border post's files for the web page tests: a store with sealed sample alerts, officers.

The store is filled through the store's own API with alerts sealed by the origin's key,
as the post applies verified feed records; no Kafka is needed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher

from border_exchange.adapters.officer_db import OfficerDB, Role, officers_path
from border_exchange.adapters.post_store import PostStore
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import redact
from tests.unit.test_post_store import FEED, accepted, sealed

OFFICER: Final = "amina"
PASSWORD: Final = "correct-horse-42"
ADMIN: Final = "chef"
ADMIN_PASSWORD: Final = "battery-staple-77"
QUICK_HASHER: Final = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""Argon2id with small costs, so that the unit tests log in quickly (the post uses the
library's defaults)."""


def fill_store(path: Path) -> Path:
    """A post store holding: NGAKOLA (photo and documents withheld), LADU (photo shown,
    Arabic-script name), a vehicle notice; the feed caught up and just synced."""
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    with PostStore.open(path) as store:
        withheld = sealed(
            sample_alert(AlertType.WANTED_PERSON, language="fr"), "wp-fr", issued=issued
        )
        shown = sealed(sample_alert(AlertType.WANTED_PERSON, language="en"), "wp-en", issued=issued)
        vehicle = sealed(sample_alert(AlertType.VEHICLE_NOTICE), "vn-1", issued=issued)
        store.apply(
            [
                accepted(redact(withheld, {"identity", "description", "offence", "contact"}), 0),
                accepted(shown, 1),
                accepted(vehicle, 2),
            ]
        )
        store.record_sync({(FEED, 0): 3})
    return path


def add_officers(store: Path, hasher: PasswordHasher = QUICK_HASHER) -> Path:
    """An officer and a post administrator for ``store``; the officers' file."""
    path = officers_path(store)
    with OfficerDB(path, hasher=hasher) as officers:
        officers.add(OFFICER, PASSWORD, Role.OFFICER)
        officers.add(ADMIN, ADMIN_PASSWORD, Role.ADMIN)
    return path
