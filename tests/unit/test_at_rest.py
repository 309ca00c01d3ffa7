"""A version's sections sealed at once are what ``seal_local`` would have sealed one by one."""

from __future__ import annotations

import pytest

from border_exchange.domain.at_rest import (
    KEY_SIZE,
    NONCE_SIZE,
    RECORD,
    NotOpened,
    Place,
    open_local,
    seal_version,
)


def test_each_section_of_a_version_opens_at_its_own_place_only() -> None:
    plaintexts = {"identity": b'{"family_names": ["MBALA"]}', "photo": b"", RECORD: b"\xc3\x01x"}
    sealed = seal_version("UGA", "wp-7", 3, plaintexts)
    assert [name for name, _, _ in sealed] == list(plaintexts)
    for name, key, blob in sealed:
        assert len(key) == KEY_SIZE
        assert open_local(key, Place("UGA", "wp-7", 3, name), blob) == plaintexts[name]
        for elsewhere in (
            Place("UGA", "wp-7", 4, name),
            Place("UGA", "wp-8", 3, name),
            Place("COD", "wp-7", 3, name),
            Place("UGA", "wp-7", 3, "other"),
        ):
            with pytest.raises(NotOpened):
                open_local(key, elsewhere, blob)
    keys = {key for _, key, _ in sealed}
    nonces = {blob[:NONCE_SIZE] for _, _, blob in sealed}
    assert len(keys) == len(nonces) == len(plaintexts)  # a fresh key and nonce each
