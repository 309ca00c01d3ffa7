"""An ASGI application served by uvicorn inside the running event loop, on a chosen or free port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any


@contextlib.asynccontextmanager
async def serving(app: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this event loop (a free port by default); yields its URL.

    uvicorn bounds what a client may hold: an idle connection closes after 5 s, and h11
    parses each request within its size limits.
    """
    import uvicorn  # loaded only by the processes that serve HTTP

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the process around it keeps its own signal handling

    server = Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # raises why it could not start
            raise RuntimeError("the HTTP server stopped before it started")
        await asyncio.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task
