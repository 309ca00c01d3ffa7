"""Who plays in the demo: the participants, their posts, the auditor, how long to wait."""

from __future__ import annotations

from typing import Final

PARTICIPANTS: Final = ("CAF", "COD", "SSD", "UN-MONUSCO")
UNSIGNED_BY_CAF: Final = "SSD-CAF-INCIDENTS"
"""The example agreement the demo has only SSD sign: not in force."""
POSTS: Final = {"CAF": ("bangui-port",), "COD": ("zongo",)}
"""Two posts facing each other across the Oubangui river: Bangui (CAF) and Zongo (COD)."""
AUDITOR: Final = "oversight"
WAIT: Final = 90.0
"""Seconds to wait for the router or a post before the demo gives up."""
HTTP_ORIGIN: Final = "UN-MONUSCO"
"""The participant whose alerts the demo publishes through the gateway's HTTP API."""
