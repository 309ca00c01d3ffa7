"""border-exchange: signed police alerts routed across borders under bilateral agreements."""

from __future__ import annotations

from border_exchange.errors import BorderExchangeError

__all__ = ["BorderExchangeError", "__version__"]


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed package's metadata when first asked for.

    Reading it imports ``importlib.metadata`` (and the e-mail and zip modules under it):
    a tenth of a restarted router's imports, for a string it never uses.
    """
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("border-exchange")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        found = "0.0.0+unknown"
    globals()["__version__"] = found
    return found
