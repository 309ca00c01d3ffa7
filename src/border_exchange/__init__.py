"""border-exchange: signed police alerts routed across borders under bilateral agreements."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from border_exchange.errors import BorderExchangeError

try:
    __version__ = version("border-exchange")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["BorderExchangeError", "__version__"]
