"""The demo's governance step: a change of the trust store that no single operator can make.

The hub operator drafts serial 2 of the trust store, admitting Uganda's police (UGA,
with its own fresh key and its self-signed entry). Approved by UGA and COD alone (one
of the four services in force), the running router refuses it and keeps serial 1;
approved by CAF, COD and SSD (three of four: a majority), the router takes it and
publishes the new store's serial and digest with the agreement set. The auditor is
then given both stores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from border_exchange.demo.processes import RouterProcess
from border_exchange.demo.sandbox import Sandbox

CANDIDATE = "UGA"
"""The service the operator proposes to admit."""

UNDER_SIGNED = ("UGA", "COD")
"""Who approves the first draft: one of the four services in force (UGA does not count)."""

MAJORITY = ("CAF", "COD", "SSD")
"""Who approves the second: three of the four."""

_OUTCOME = ("trust.loaded", "trust.rejected")


@dataclass(frozen=True)
class GovernanceShown:
    """What the step showed, and the governed stores the router routed under, in order."""

    refused: bool
    """The under-signed admission was refused and the router kept serial 1."""
    taken: bool
    """The admission approved by a majority was taken (serial 2)."""
    stores: tuple[Path, ...]
    reason: str = ""


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` at once (the router never reads half a file)."""
    draft = path.with_name(path.name + ".draft")
    draft.write_text(text, encoding="utf-8")
    os.replace(draft, path)


def _kept(trust_path: Path, name: str) -> Path:
    """A copy of the store in force beside it, called ``name``, as the auditor keeps it."""
    copy = trust_path.with_name(name)
    copy.write_text(trust_path.read_text(encoding="utf-8"), encoding="utf-8")
    return copy


async def govern(
    sandbox: Sandbox, trust_path: Path, router: RouterProcess, say: Callable[[str], None]
) -> GovernanceShown:
    """Propose the admission twice to the running ``router``; what it did each time."""
    first = _kept(trust_path, "trust-1.yaml")
    candidate = sandbox.with_participant(CANDIDATE)

    async def propose(approvers: Sequence[str]) -> tuple[str, str]:
        mark = router.log_mark()
        _replace(trust_path, candidate.trust_yaml(serial=2, approvers=approvers))
        event = await router.wait_for_event(_OUTCOME, mark)
        return str(event["event"]), str(event.get("error", ""))

    say(f"the hub operator drafts serial 2 admitting {CANDIDATE}, its entry signed by its own key")
    outcome, error = await propose(UNDER_SIGNED)
    refused = outcome == "trust.rejected"
    reason = error.partition("refused: ")[2] or error
    say(f"approved by {', '.join(UNDER_SIGNED)} only: the router refuses it, serial 1 stays")
    say(
        f"  ({reason})",
    )
    outcome, _ = await propose(MAJORITY)
    taken = outcome == "trust.loaded"
    second = _kept(trust_path, "trust-2.yaml")
    say(
        f"approved by {', '.join(MAJORITY)} (3 of the 4 services in force): "
        + ("the router takes serial 2" if taken else "NOT TAKEN")
        + ", and records it with the agreement set for the auditor"
    )
    say(f"the stores in force, for the auditor: {first.name}, {second.name}")
    return GovernanceShown(refused, taken, (first, second), reason)
