"""A probe for "does the event loop go on while this awaits?": run a coroutine beside a
ticker and report how it ended and how often the loop ticked meanwhile."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable


def run_beside_a_ticker(make: Callable[[], Awaitable[object]], release: threading.Event) -> tuple[str, int]:
    """Run ``make()`` on a fresh loop with a 10 ms ticker; (its exception's message, or "" if
    it returned; ticks counted). ``release`` is set afterwards, freeing a hung worker thread."""

    async def main() -> tuple[str, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(tick())
        try:
            await make()
        except Exception as exc:  # noqa: BLE001 - the message is what the test reads
            return str(exc), ticks
        finally:
            t.cancel()
            release.set()
        return "", ticks

    return asyncio.run(main())
