"""Awaiting a condition with a bound, instead of sleeping a fixed time and hoping."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

Condition = Callable[[], bool] | Callable[[], Awaitable[bool]]


async def eventually(
    condition: Condition, *, within: float = 30.0, every: float = 0.1, what: str = "condition"
) -> None:
    """Return as soon as ``condition()`` holds; fail naming ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not so within {within:g} s")
        await asyncio.sleep(every)
