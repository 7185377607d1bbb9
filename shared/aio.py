"""Small asyncio helpers the background loops share."""

from __future__ import annotations

import asyncio


async def wait_until(event: asyncio.Event, seconds: float) -> bool:
    """Wait for the event at most `seconds`; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
