"""Crypto-shredding at the post: every stored section is encrypted under a key of its own,
kept in the key store; erasure destroys the keys, so a copy of the store taken before
(a backup of ``post.db`` and its write-ahead log) can no longer be read."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from border_exchange.adapters.post_store import Accepted, PostStore
from border_exchange.domain.at_rest import RECORD, NotOpened, Place, open_local
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import seal, section_content
from border_exchange.errors import StoreError
from tests.cancels import cancel_of
from tests.clock import StoppedClock

KEY = SigningKey(bytes(range(32)))
FEED = "bx.COD.from.CAF"
REMARK = "Seen near the Zongo crossing at dawn, carrying a satchel"


def _wanted(alert_id: str, remark: str, expires_at: datetime, version: int = 1) -> Envelope:
    base = sample_alert(AlertType.WANTED_PERSON, origin="CAF", alert_id=alert_id)
    data = base.model_dump()
    data["sections"]["remarks"]["text"] = remark
    data["expires_at"] = expires_at
    data["version"] = version
    data["operation"] = "CREATE" if version == 1 else "UPDATE"
    alert = type(base).model_validate(data)
    return seal(
        alert,
        signing_key=KEY,
        key_id="CAF-1",
        message_id=f"m-{alert_id}-{version}",
        issued_at=datetime.now(UTC),
    )


def _cancel(envelope: Envelope) -> Envelope:
    return cancel_of(envelope, KEY, "arrested", f"cancel-{envelope.header.alert_id}")


def _accepted(envelope: Envelope, offset: int) -> Accepted:
    sections = {n: section_content(envelope, n) for n in envelope.present_sections}
    return Accepted(FEED, 0, offset, envelope, sections)


def _files(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def _backup(store: Path, to: Path) -> Path:
    """Copy the content store's files (database and write-ahead log), not its key store."""
    to.mkdir()
    for part in ("", "-wal"):
        if (store.parent / (store.name + part)).exists():
            shutil.copy(store.parent / (store.name + part), to / (store.name + part))
    return to / store.name


def _try_to_read(copy: Path, keys: Path, alert_id: str) -> list[bytes]:
    """Everything that decrypts, from the copy's ciphertexts of ``alert_id``, with any key
    the key store still holds (not only its own: every key is tried on every part)."""
    with sqlite3.connect(copy) as db:
        row = db.execute(
            "SELECT origin, version, sections_json, envelope FROM alerts WHERE alert_id = ?",
            (alert_id,),
        ).fetchone()
    origin, version, text, record = row
    parts = {n: base64.b64decode(b) for n, b in json.loads(text).items()}
    parts[RECORD] = record
    with sqlite3.connect(keys) as db:
        held = [bytes(k) for (k,) in db.execute("SELECT key FROM section_keys")]
    opened = []
    for name, blob in parts.items():
        for key in held:
            try:
                opened.append(open_local(key, Place(origin, alert_id, version, name), blob))
            except NotOpened:
                continue
    return opened


def test_sections_are_encrypted_at_rest_and_read_back_in_clear(tmp_path: Path) -> None:
    clock = StoppedClock()
    path = tmp_path / "post.db"
    with PostStore.open(path, clock=clock) as store:
        store.apply([_accepted(_wanted("wp-1", REMARK, clock.now + timedelta(days=30)), 0)])
        assert store.get("CAF", "wp-1").sections["remarks"]["text"] == REMARK  # type: ignore[union-attr]  # found just above
        assert REMARK.encode() not in _files(path)  # neither the store nor its key store
        assert (tmp_path / "post.db.keys").exists()


def test_a_copy_taken_before_cancellation_cannot_be_read_once_the_keys_are_destroyed(
    tmp_path: Path,
) -> None:
    clock = StoppedClock()
    path = tmp_path / "post.db"
    keys = tmp_path / "post.db.keys"
    wanted = _wanted("wp-1", REMARK, clock.now + timedelta(days=30))
    staying = _wanted("wp-2", "Other remark", clock.now + timedelta(days=30))
    with PostStore.open(path, clock=clock) as store:
        store.apply([_accepted(wanted, 0), _accepted(staying, 1)])
        copy = _backup(path, tmp_path / "backup")
        # Before erasure the copy reads, with the post's key store: the keys are what matters.
        assert REMARK.encode() in b"".join(_try_to_read(copy, keys, "wp-1"))
        with PostStore.open(copy, key_path=keys) as restored:
            assert restored.get("CAF", "wp-1").sections["remarks"]["text"] == REMARK  # type: ignore[union-attr]  # read just now
        with sqlite3.connect(copy) as db:
            (ref,) = db.execute("SELECT key_ref FROM alerts WHERE alert_id = 'wp-1'").fetchone()
        with sqlite3.connect(keys) as db:
            destroyed = [
                k for (k,) in db.execute("SELECT key FROM section_keys WHERE ref = ?", (ref,))
            ]
        assert (
            len(destroyed) == len(wanted.present_sections) + 1
        )  # a key per section, and the record's
        store.apply([_accepted(_cancel(wanted), 2)])
        assert store.get("CAF", "wp-1") is None
        left = _files(keys)  # no byte of a destroyed key stays in the key store or its log
        assert not [k for k in destroyed if k in left]
        assert store.get("CAF", "wp-2") is not None  # the other alert's keys are untouched
    assert _try_to_read(copy, keys, "wp-1") == []  # no key left opens any part of it
    assert _try_to_read(copy, keys, "wp-2") != []
    with PostStore.open(copy, key_path=keys) as restored, pytest.raises(StoreError) as raised:
        restored.get("CAF", "wp-1")
    assert "not in the key store" in str(raised.value)


def test_expiry_destroys_the_keys_and_an_older_version_goes_with_its_keys(tmp_path: Path) -> None:
    clock = StoppedClock()
    path = tmp_path / "post.db"
    keys = tmp_path / "post.db.keys"
    expiring = _wanted("wp-1", REMARK, clock.now + timedelta(days=2))
    updated = _wanted("wp-2", "First remark", clock.now + timedelta(days=30))
    with PostStore.open(path, clock=clock) as store:
        store.apply([_accepted(expiring, 0), _accepted(updated, 1)])
        copy = _backup(path, tmp_path / "backup")
        assert _try_to_read(copy, keys, "wp-2") != []
        store.apply([_accepted(_wanted("wp-2", "Second remark", updated.header.expires_at, 2), 2)])
        assert store.get("CAF", "wp-2").sections["remarks"]["text"] == "Second remark"  # type: ignore[union-attr]  # stored just above
        assert _try_to_read(copy, keys, "wp-2") == []  # version 1's keys went with it
        assert _try_to_read(copy, keys, "wp-1") != []
        clock.now += timedelta(days=3)
        assert store.purge_expired() == 1
    assert _try_to_read(copy, keys, "wp-1") == []
    assert REMARK.encode() not in _files(keys)


def test_keys_a_crash_left_without_content_are_destroyed_by_the_next_erasure(
    tmp_path: Path,
) -> None:
    clock = StoppedClock()
    path = tmp_path / "post.db"

    def crash(_: object) -> None:
        raise RuntimeError("power cut")

    wanted = _wanted("wp-1", REMARK, clock.now + timedelta(days=30))
    with (
        PostStore.open(path, clock=clock, before_commit=crash) as store,
        pytest.raises(RuntimeError),
    ):
        store.apply([_accepted(wanted, 0)])
    with sqlite3.connect(tmp_path / "post.db.keys") as db:
        assert db.execute("SELECT COUNT(*) FROM section_keys").fetchone()[0] > 0
    with PostStore.open(path, clock=clock) as store:
        assert store.get("CAF", "wp-1") is None
        store.erase_after_grace(timedelta(days=7))
    with sqlite3.connect(tmp_path / "post.db.keys") as db:
        assert db.execute("SELECT COUNT(*) FROM section_keys").fetchone()[0] == 0


def test_a_store_opened_with_another_key_store_is_refused(tmp_path: Path) -> None:
    clock = StoppedClock()
    path = tmp_path / "post.db"
    with PostStore.open(path, clock=clock) as store:
        store.apply([_accepted(_wanted("wp-1", REMARK, clock.now + timedelta(days=30)), 0)])
    with pytest.raises(StoreError) as raised:
        PostStore.open(path, key_path=tmp_path / "elsewhere.keys")
    assert "does not belong to the post store" in str(raised.value)


def test_a_store_of_schema_version_1_is_encrypted_when_opened(tmp_path: Path) -> None:
    clock = StoppedClock()
    path = tmp_path / "post.db"
    wanted = _wanted("wp-1", REMARK, clock.now + timedelta(days=30))
    with PostStore.open(path, clock=clock) as store:
        store.apply([_accepted(wanted, 0)])
        clear = store.get("CAF", "wp-1")
        assert clear is not None
    # Make it what version 1 wrote: sections and record in clear, no key store.
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE alerts SET sections_json = ?, envelope = ?, key_ref = NULL",
            (json.dumps(clear.sections), encode_envelope(wanted)),
        )
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        db.execute("DELETE FROM meta WHERE key = 'store_id'")
    for part in ("", "-wal", "-shm"):
        (tmp_path / f"post.db.keys{part}").unlink(missing_ok=True)
    assert REMARK.encode() in _files(path)
    with PostStore.open(path, clock=clock) as store:
        assert store.get("CAF", "wp-1") == clear
        assert store.header_of("CAF", "wp-1") == wanted.header
    assert REMARK.encode() not in _files(path)
