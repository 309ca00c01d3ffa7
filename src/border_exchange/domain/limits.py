"""The size contract: how large an alert may be, and every setting that follows from it.

One number decides the rest: ``MAX_ALERT_BYTES``, the largest sealed alert (its
single-object encoded envelope, the outbox record's value) the exchange carries.

- Every topic provisioning creates holds records of at most ``MAX_MESSAGE_BYTES``
  (``max.message.bytes``, which the broker checks against a record batch as written,
  compressed or not), the same cap Kafka's producers apply by default.
- A feed copy is the origin's bytes or a redaction of them (never larger), a state
  copy the same bytes again; a decision's audit record repeats the header and names
  each participant's outcome; a quarantine record keeps a bounded prefix of what it
  refuses. Each is at most ``MAX_ALERT_BYTES`` plus ``RECORD_HEADROOM_BYTES`` (key,
  headers, batch framing, outcomes), which is ``MAX_MESSAGE_BYTES``: every record the
  router writes for a record it accepts fits.
- Producers may send a record of ``MAX_MESSAGE_BYTES`` (``max_request_size``); the
  router's record batches are at most ``ROUTER_BATCH_BYTES`` or one record.
- Consumers fetch ``FETCH_PARTITION_BYTES`` per partition, at least one largest
  record (a broker always returns a partition's first batch, however large, so a
  hostile oversized record is still read, and quarantined).
- A photo may be ``MAX_PHOTO_BYTES``: sealed, its section is a little larger (salt,
  digest, encoding), and the rest of a wanted-person alert has
  ``MAX_ALERT_BYTES - MAX_PHOTO_BYTES`` for its other sections.

The gateway refuses a larger photo or alert before it sends anything; the router
quarantines a larger outbox record without decoding it (``TOO_LARGE``); a quarantine
record keeps ``QUARANTINE_PREFIX_BYTES`` of the value with its length and SHA-256.
"""

from __future__ import annotations

from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB

MAX_MESSAGE_BYTES: Final = 1 * MIB
"""``max.message.bytes`` of every topic, and the producers' ``max_request_size``."""

MAX_ALERT_BYTES: Final = 768 * KIB
"""The largest sealed alert (encoded envelope) a gateway publishes and the router routes."""

RECORD_HEADROOM_BYTES: Final = MAX_MESSAGE_BYTES - MAX_ALERT_BYTES
"""Room around the largest alert in one record: key, headers, batch framing, an audit
record's outcomes."""

MAX_PHOTO_BYTES: Final = 512 * KIB
"""The largest photo (image bytes) a wanted-person alert carries."""

ROUTER_BATCH_BYTES: Final = 512 * KIB
"""The router's record batches (``max_batch_size``); a larger record goes in one alone."""

FETCH_PARTITION_BYTES: Final = MAX_MESSAGE_BYTES
"""What a consumer fetches of one partition per request (``max_partition_fetch_bytes``)."""

FETCH_MAX_BYTES: Final = 50 * MIB
"""What a consumer fetches per request in all (``fetch_max_bytes``, Kafka's default)."""

QUARANTINE_PREFIX_BYTES: Final = 64 * KIB
"""How much of a refused value (and of its key) a quarantine record keeps."""

QUARANTINE_TEXT_CHARS: Final = 1000
"""How many characters of a refusal's detail and of a refused header's ids are kept."""

MAX_QUARANTINE_RECORD_BYTES: Final = 2 * QUARANTINE_PREFIX_BYTES + 16 * KIB
"""A bound on an encoded quarantine record: two prefixes, texts and framing."""

MAX_JSON_ALERT_BYTES: Final = 2 * MAX_ALERT_BYTES
"""The largest alert as JSON (an HTTP gateway's request body): the photo in base64 (4/3
of its bytes) and the other sections with JSON's names and quoting, within twice the
sealed size. A larger body is refused before it is read; an alert that fits here but
not sealed is refused by ``alert_size_problem``."""

MAX_HIT_TEXT_CHARS: Final = 4000
"""The longest remarks, reason or instructions of a hit report or acknowledgement
(characters); a post refuses more before signing, the router quarantines it (``TOO_LARGE``)."""

MAX_HIT_FIELD_CHARS: Final = 300
"""The longest place, contact, post name or id in a hit report or acknowledgement."""

MAX_HIT_BYTES: Final = 64 * KIB
"""The largest encoded hit report or acknowledgement the router routes; every text field at
its limit (four bytes a character in UTF-8) fits well within it."""


def bounded_text(text: str, limit: int = QUARANTINE_TEXT_CHARS) -> str:
    """``text``, cut to ``limit`` characters with a note of how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def alert_size_problem(size: int, what: str = "the sealed alert") -> str | None:
    """Why ``what`` (a sealed alert) of ``size`` bytes is refused, or None when it fits."""
    if size <= MAX_ALERT_BYTES:
        return None
    return f"{what} is {size:,} bytes, more than the exchange's limit of {MAX_ALERT_BYTES:,} bytes"


def _check() -> None:
    """The contract's own consistency, checked once on import."""
    assert MAX_ALERT_BYTES + RECORD_HEADROOM_BYTES <= MAX_MESSAGE_BYTES
    assert RECORD_HEADROOM_BYTES >= 64 * KIB
    assert MAX_PHOTO_BYTES < MAX_ALERT_BYTES
    assert ROUTER_BATCH_BYTES <= MAX_MESSAGE_BYTES
    assert FETCH_PARTITION_BYTES >= MAX_MESSAGE_BYTES
    assert FETCH_MAX_BYTES >= FETCH_PARTITION_BYTES
    assert MAX_QUARANTINE_RECORD_BYTES <= RECORD_HEADROOM_BYTES + MAX_ALERT_BYTES
    assert 4 * (3 * MAX_HIT_TEXT_CHARS + 12 * MAX_HIT_FIELD_CHARS) + KIB <= MAX_HIT_BYTES
    assert MAX_JSON_ALERT_BYTES >= 4 * -(-MAX_PHOTO_BYTES // 3) + (
        MAX_ALERT_BYTES - MAX_PHOTO_BYTES
    )


_check()
