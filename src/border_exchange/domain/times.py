"""Times as the exchange writes and reads them: instants in UTC, ISO 8601 with a zone."""

from __future__ import annotations

from datetime import UTC, datetime

from border_exchange.errors import ConfigError


def iso(value: datetime) -> str:
    """``value`` in UTC as ISO 8601 with a ``Z``, e.g. ``2026-06-01T12:00:00Z``."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def utc_minute(value: datetime) -> str:
    """``value`` in UTC to the minute, as people read it, e.g. ``2026-06-01 12:00 UTC``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def aware_time(value: str, name: str) -> datetime:
    """The ISO 8601 time ``value`` given as ``name`` (an option), which must carry a zone."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name}: not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ConfigError(f"{name}: give a time zone, e.g. 2026-06-01T12:00:00Z")
    return parsed
