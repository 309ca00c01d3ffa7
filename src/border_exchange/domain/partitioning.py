"""Kafka's default partitioner: the murmur2 hash of a record key and the partition it picks.

The router checks that every record it reads sits where the origin's partitioner put it,
and the auditor finds a feed copy's partition the same way. ``_native.c`` computes
``key_hash`` for ``bytes``; ``murmur2`` is the Python one, for everything else and
without the compiled module. Tests hold both to aiokafka's partitioner.
"""

from __future__ import annotations

import struct

from border_exchange.domain import fastpath


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data`` (as its Java client computes it), unsigned 32 bits.

    The same function as aiokafka's, which reads the bytes one at a time: this one
    reads whole words, in a third of the time.
    """
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length & 3
    if tail:
        end = length & ~3
        if tail == 3:
            h ^= data[end + 2] << 16
        if tail >= 2:
            h ^= data[end + 1] << 8
        h = ((h ^ data[end]) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def key_hash(key: bytes | None) -> int | None:
    """The hash Kafka's default partitioner takes of ``key`` (murmur2, positive)."""
    if key is None:
        return None
    hashed = fastpath.key_hash(key)  # the same function compiled; None for a bytes subclass
    return murmur2(key) & 0x7FFFFFFF if hashed is None else hashed


def expected_partition(key: bytes | None, partitions: int) -> int | None:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``."""
    hashed = key_hash(key)
    return None if hashed is None or partitions <= 0 else hashed % partitions
