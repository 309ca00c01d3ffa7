"""Reading the trust store document from a file."""

from __future__ import annotations

from pathlib import Path

from border_exchange.domain.trust import TrustStore, parse_trust_store
from border_exchange.errors import TrustStoreError


def load_trust_store(path: str | Path) -> TrustStore:
    """The trust store in the YAML file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustStoreError(f"cannot read trust store {path}: {exc.strerror}") from exc
    try:
        return parse_trust_store(text)
    except TrustStoreError as exc:
        raise TrustStoreError(f"{path}: {exc}") from exc
