"""Interpreter tuning for the entry points that want it: the cycle collector, the switch interval.

These change the state of the whole process, so only commands and benchmarks apply them
(``router run``: ``tune_garbage_collector``; ``audit replay`` and the audit benchmark:
``tuned_for_replay``; every command: ``without_pydantic_plugins``); the code they run
behaves the same without them, only slower.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final


def without_pydantic_plugins() -> None:
    """Skip pydantic's search for plugins, unless the environment already says otherwise.

    On the first model it builds, pydantic reads the entry points of every installed
    distribution to find plugins (``PYDANTIC_DISABLE_PLUGINS`` unset): a tenth of the CPU
    a restarted router spends before it routes, for plugins the project has none of.
    Set the variable to anything else (``PYDANTIC_DISABLE_PLUGINS=none``) to load them.
    Called by the command line before it imports any command.
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


GC_THRESHOLDS: Final[tuple[int, int, int]] = (10_000, 20, 10)
"""Allocations between young collections, young collections between middle ones, and so on."""


def tune_garbage_collector() -> None:
    """Set up a long-running routing process's cycle collector for its batches.

    Python's defaults (700, 10, 10) suit short scripts: under a backlog the router holds
    a batch of 2,000 decoded records (some 30 tracked objects each) for the length of
    a transaction, and collected them again and again, in full collections of the
    whole heap taking 100-240 ms each, about a sixth of its time in all. Everything
    alive once the process is set up (modules, configuration, trust store) is frozen
    out of the collector's scans, and young collections run every 10,000 allocations
    instead of 700, so most batch objects are gone before they are scanned. Reference
    counting still frees everything acyclic at once; cycles are still collected.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while an audit replay builds its (acyclic) values.

    A replay keeps every decoded record and verified copy until the verdict, so the
    collector's full passes, which grow with everything alive, took about a quarter of
    the replay's time while finding nothing to free; reference counting still frees
    everything as usual. The previous state is restored on the way out.

    A paused collector still counts the objects made meanwhile: the first one made after
    the pause would start a young-generation pass over all of them (every decoded audit
    record, about 8% of a replay). On the way out they are moved, untraversed, to the
    oldest generation (``gc.freeze`` then ``gc.unfreeze``, only when nothing else is
    frozen), where only a full pass looks at them, as at anything long-lived.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


HANDOFF_INTERVAL: Final = 0.0005
"""The switch interval (s) while the signature thread works beside the replay."""


@contextmanager
def prompt_gil_handoffs() -> Iterator[None]:
    """Let a replay's signature thread have the GIL within ``HANDOFF_INTERVAL`` when it asks.

    The thread needs the GIL briefly twice a batch, to take the batch and to hand back
    its answers. Under the default switch interval (5 ms) it waited up to that long each
    time for the replay's thread to let go: up to 10 ms per batch of about 25 ms of
    checks, so the thread fell behind and the replay waited for its backlog at the end
    (measured: that wait went from about 30 to 12 µs per message, the replay took 4%
    less time). The interval only
    matters when a thread asks. A shorter interval is left as it is; the previous one is
    restored on the way out.
    """
    was = sys.getswitchinterval()
    if was <= HANDOFF_INTERVAL:
        yield
        return
    sys.setswitchinterval(HANDOFF_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(was)


@contextmanager
def tuned_for_replay() -> Iterator[None]:
    """An audit replay's tuning: the collector paused, prompt GIL handoffs; both restored."""
    with cyclic_gc_paused(), prompt_gil_handoffs():
        yield
