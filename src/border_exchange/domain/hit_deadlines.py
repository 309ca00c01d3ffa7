"""How long the origin's desk has to answer a hit report, and whether it is open or overdue.

The deadline follows the alert's type and priority, from a table a service may set in a
YAML file (``desk --deadlines FILE``); the defaults, and why, are in ``docs/hits.md``:
12 hours for a person as SIS asks of a SIRENE bureau, shorter when the alert is urgent,
48 hours for vehicles and incidents as Prüm follow-ups. The clock is always passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

import yaml

from border_exchange.domain.catalog import AlertType, Priority
from border_exchange.errors import ConfigError

_H: Final = timedelta(hours=1)

DEFAULT_DEADLINES: Final[Mapping[tuple[AlertType, Priority], timedelta]] = MappingProxyType(
    {
        (AlertType.WANTED_PERSON, Priority.URGENT): 2 * _H,
        (AlertType.WANTED_PERSON, Priority.PRIORITY): 6 * _H,
        (AlertType.WANTED_PERSON, Priority.ROUTINE): 12 * _H,
        (AlertType.VEHICLE_NOTICE, Priority.URGENT): 6 * _H,
        (AlertType.VEHICLE_NOTICE, Priority.PRIORITY): 24 * _H,
        (AlertType.VEHICLE_NOTICE, Priority.ROUTINE): 48 * _H,
        (AlertType.BORDER_INCIDENT, Priority.URGENT): 6 * _H,
        (AlertType.BORDER_INCIDENT, Priority.PRIORITY): 24 * _H,
        (AlertType.BORDER_INCIDENT, Priority.ROUTINE): 48 * _H,
    }
)
"""The defaults of the deadline table (documented in ``docs/hits.md``)."""


class HitStatus(StrEnum):
    """Where a hit report stands at the origin's desk."""

    OPEN = "OPEN"
    OVERDUE = "OVERDUE"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    ACKNOWLEDGED_LATE = "ACKNOWLEDGED_LATE"


@dataclass(frozen=True)
class DeadlineTable:
    """Hours to answer a hit, per alert type and priority."""

    hours: Mapping[tuple[AlertType, Priority], timedelta] = field(
        default_factory=lambda: DEFAULT_DEADLINES
    )

    def deadline(
        self, alert_type: AlertType, priority: Priority, reported_at: datetime
    ) -> datetime:
        """When the answer to a hit on an ``alert_type`` alert of ``priority`` is due."""
        return reported_at + self.hours[alert_type, priority]


def hit_status(deadline: datetime, acknowledged_at: datetime | None, now: datetime) -> HitStatus:
    """The status of a hit due at ``deadline``, acknowledged at ``acknowledged_at`` or not."""
    if acknowledged_at is not None:
        late = acknowledged_at > deadline
        return HitStatus.ACKNOWLEDGED_LATE if late else HitStatus.ACKNOWLEDGED
    return HitStatus.OPEN if now <= deadline else HitStatus.OVERDUE


def parse_deadlines(text: str) -> DeadlineTable:
    """The table in YAML ``text``: ``{WANTED_PERSON: {URGENT: 2, ...}, ...}`` in hours.

    Entries left out keep their default; every wrong name or value is named.
    """
    try:
        document: Any = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"deadline table is not valid YAML: {exc}") from exc
    problems: list[str] = []
    hours = dict(DEFAULT_DEADLINES)
    if not isinstance(document, Mapping):
        raise ConfigError("deadline table: must be a mapping of alert types")
    for type_name, row in document.items():
        try:
            alert_type = AlertType(str(type_name))
        except ValueError:
            problems.append(f"{type_name}: not an alert type ({', '.join(AlertType)})")
            continue
        if not isinstance(row, Mapping):
            problems.append(f"{type_name}: must map priorities to hours")
            continue
        for priority_name, value in row.items():
            try:
                priority = Priority(str(priority_name))
            except ValueError:
                problems.append(f"{type_name}.{priority_name}: not a priority")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                problems.append(f"{type_name}.{priority_name}: must be a positive number of hours")
                continue
            hours[alert_type, priority] = timedelta(hours=value)
    if problems:
        raise ConfigError("invalid deadline table: " + "; ".join(problems))
    return DeadlineTable(MappingProxyType(hours))
