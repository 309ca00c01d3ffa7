"""How long each kind of topic keeps its data, and when an alert's personal data must go.

One frozen ``RetentionPolicy`` holds every figure; provisioning turns it into topic
configs, the router and the posts read the grace period from it. The defaults (see
``docs/operations.md`` for the reasons):

- outboxes and feeds: 35 days (a post may be offline for 30 days and still catch up
  from the feed; beyond that it bootstraps from the state topics);
- state topics (compacted, the latest version of every alert in force): kept while
  the alert is in force; a tombstone follows ``grace`` after its cancellation or
  expiry, and compaction removes the value within ``state_segment`` plus
  ``state_max_compaction_lag``; the tombstone itself stays readable for
  ``state_tombstone`` so that a reader in the middle of a bootstrap sees it;
- grace after cancellation or expiry: 7 days;
- audit trails: 10 years, which must cover the longest life of an alert
  (``longest_alert``, 5 years) plus the grace: otherwise the audit would lose the
  decisions about alerts still in force, and ``check`` refuses the policy;
- quarantine: as long as the audit (its records are the evidence of the audit's
  quarantine decisions);
- agreements: forever (a few kilobytes per agreement set; every decision ever
  recorded is re-evaluated against them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any, Final

from border_exchange.errors import ConfigError

DAY: Final = timedelta(days=1)
YEAR: Final = timedelta(days=365)
FOREVER_MS: Final = -1
"""Kafka's ``retention.ms`` for "never delete"."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Every retention figure of the exchange."""

    feed: timedelta = 35 * DAY
    """Outboxes and partner feeds (time-retained logs)."""
    grace: timedelta = 7 * DAY
    """After an alert's cancellation or expiry, until its personal data is erased."""
    state_tombstone: timedelta = DAY
    """How long a state topic's tombstone stays readable (``delete.retention.ms``)."""
    state_segment: timedelta = DAY
    """Longest life of a state topic's active segment (``segment.ms``): the cleaner
    compacts only closed segments, so this bounds how long an erased value lingers."""
    state_max_compaction_lag: timedelta = DAY
    """A closed state segment is compacted within this (``max.compaction.lag.ms``)."""
    state_dirty_ratio: float = 0.5
    """Share of a state log not yet compacted that triggers the cleaner early."""
    audit: timedelta = 10 * YEAR
    """Audit trails (ids, digests, decisions; no section content)."""
    quarantine: timedelta = 10 * YEAR
    """Quarantine records (the refused records themselves, kept as evidence)."""
    agreements: timedelta | None = None
    """The agreements topic; None keeps it forever."""
    longest_alert: timedelta = 5 * YEAR
    """The longest an alert stays in force (issue to expiry): what the audit must cover."""
    tombstone_reissue: timedelta = 35 * DAY
    """On start the router writes again the tombstones due this long before now, in case
    its previous run died before writing them (as long as the feeds: a hub down longer
    has lost more than tombstones)."""
    segment_bytes: int | None = None
    """``segment.bytes`` of the time-retained and state topics (None: the broker's)."""
    feed_segment: timedelta | None = None
    """``segment.ms`` of outboxes and feeds (None: the broker's, 7 days)."""

    @property
    def erasure_bound(self) -> timedelta:
        """Longest time from cancellation or expiry until a state value is gone from disk."""
        return self.grace + self.state_segment + self.state_max_compaction_lag

    def check(self) -> RetentionPolicy:
        """This policy when it is coherent; raises ``ConfigError`` naming the figures if not."""
        durations = {f.name: getattr(self, f.name) for f in fields(self)}
        problems = [
            f"{name}: must be positive, not {value}"
            for name, value in durations.items()
            if isinstance(value, timedelta) and value <= timedelta(0)
        ]
        if not 0 < self.state_dirty_ratio <= 1:
            problems.append(f"state_dirty_ratio: must be in (0, 1], not {self.state_dirty_ratio}")
        covered = self.longest_alert + self.grace
        if self.audit < covered:
            problems.append(
                f"audit retention {_days(self.audit)} would delete decisions about alerts "
                f"still in force or in their grace period: alerts live up to "
                f"{_days(self.longest_alert)} plus {_days(self.grace)} of grace "
                f"({_days(covered)})"
            )
        if self.quarantine < self.feed:
            problems.append(
                f"quarantine retention {_days(self.quarantine)} is shorter than the feeds' "
                f"{_days(self.feed)}"
            )
        if problems:
            raise ConfigError("retention policy refused: " + "; ".join(problems))
        return self

    # -- topic configs -----------------------------------------------------------------

    def log_configs(self) -> dict[str, str]:
        """Configs of an outbox or feed: deleted after ``feed``."""
        configs = {"cleanup.policy": "delete", "retention.ms": str(_ms(self.feed))}
        if self.feed_segment is not None:
            configs["segment.ms"] = str(_ms(self.feed_segment))
        return self._segment_bytes(configs)

    def state_configs(self) -> dict[str, str]:
        """Configs of a state topic: compacted, never deleted by time."""
        return self._segment_bytes(
            {
                "cleanup.policy": "compact",
                "retention.ms": str(FOREVER_MS),
                "delete.retention.ms": str(_ms(self.state_tombstone)),
                "segment.ms": str(_ms(self.state_segment)),
                "max.compaction.lag.ms": str(_ms(self.state_max_compaction_lag)),
                "min.compaction.lag.ms": "0",
                "min.cleanable.dirty.ratio": repr(self.state_dirty_ratio),
            }
        )

    def audit_configs(self) -> dict[str, str]:
        """Configs of an audit trail (a hash chain: deleted by time, never compacted)."""
        return {"cleanup.policy": "delete", "retention.ms": str(_ms(self.audit))}

    def quarantine_configs(self) -> dict[str, str]:
        """Configs of the quarantine topic."""
        return {"cleanup.policy": "delete", "retention.ms": str(_ms(self.quarantine))}

    def agreements_configs(self) -> dict[str, str]:
        """Configs of the agreements topic."""
        kept = FOREVER_MS if self.agreements is None else _ms(self.agreements)
        return {"cleanup.policy": "delete", "retention.ms": str(kept)}

    def _segment_bytes(self, configs: dict[str, str]) -> dict[str, str]:
        if self.segment_bytes is not None:
            configs["segment.bytes"] = str(self.segment_bytes)
        return configs


DEFAULT_POLICY: Final = RetentionPolicy()

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|y)\s*$")
_UNITS: Final = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": DAY,
    "y": YEAR,
}


def parse_duration(text: str, where: str) -> timedelta:
    """``"35d"``, ``"10y"``, ``"500ms"`` as a duration; raises ``ConfigError`` naming ``where``."""
    found = _DURATION.match(text)
    if found is None:
        raise ConfigError(f"{where}: {text!r} is not a duration like '35d', '12h' or '10y'")
    return float(found.group(1)) * _UNITS[found.group(2)]


def policy_from(raw: Mapping[str, Any], where: str) -> RetentionPolicy:
    """A checked policy from a mapping of field names to durations (unnamed fields default)."""
    known = {f.name for f in fields(RetentionPolicy)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown retention settings {', '.join(unknown)}")
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "state_dirty_ratio":
            changes[name] = float(value)
        elif name == "segment_bytes":
            changes[name] = int(value)
        elif name == "agreements" and value in (None, "forever"):
            changes[name] = None
        else:
            changes[name] = parse_duration(str(value), f"{where}: {name}")
    return replace(DEFAULT_POLICY, **changes).check()


def _ms(value: timedelta) -> int:
    return int(value / timedelta(milliseconds=1))


def _days(value: timedelta) -> str:
    days = value / DAY
    if days >= 1:
        return f"{days:g} days"
    return f"{value.total_seconds():g} s"
