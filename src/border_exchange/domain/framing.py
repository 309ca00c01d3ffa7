"""Length-prefixed fields: how every signed or bound byte string is framed.

The contract writes ``lp(x)`` for a byte string and ``str(x)`` for a text: a 4-byte
big-endian length, then the bytes (the text's UTF-8). Signing inputs, a sealed section's
associated data and wrap binding, an agreement's signed text and the post's at-rest
associated data all frame their fields this way, so that no two different field lists
frame to the same bytes.
"""

from __future__ import annotations


def lp(data: bytes) -> bytes:
    """``data`` behind its 4-byte big-endian length."""
    return len(data).to_bytes(4, "big") + data


def text(value: str) -> bytes:
    """``value``'s UTF-8 behind its 4-byte big-endian length."""
    data = value.encode("utf-8")
    return len(data).to_bytes(4, "big") + data
