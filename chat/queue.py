"""The agents' queue, passed to the consoles of a process by one hub per process.

Every change to a conversation sends its summary to the agents' group (``_announce``). Were
each console a member, every message would cost every console a delivery from the channel
layer and a frame: 50 consoles at 200 messages a second are 10,000 frames a second, most of
the servers' time. Instead one hub per process (per event loop) is the group's member: it
keeps the newest summary of each conversation and passes what changed to its consoles as one
``{"type": "queue", "conversations": [...]}`` frame, at once when the queue has been quiet
for ``FLUSH_SECONDS``, otherwise at the end of that interval. A console so sees each change
within ``FLUSH_SECONDS`` and at most 1 / ``FLUSH_SECONDS`` queue frames a second however
busy the chat is. Nothing else of a console passes through the hub: the conversation an
agent watches streams from its invoice's group to the agent's own socket.

Two changes to one conversation announced by two processes at the same moment may reach the
hub in either order: a summary carries the conversation's ``version`` (counted under its row
lock), and the hub never passes on one older than what it holds or last sent. The console
reads the whole queue again on every (re)connect, which is how it makes good what it missed
while Redis was away (its socket is closed then, ``CLOSE_LAYER_DOWN``); a single summary
lost on its way without that shows until the conversation's next change.
"""

import asyncio
import json
import logging
from contextlib import suppress
from typing import Any, Protocol

from chat import broadcast

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
RETRY_SECONDS = 1.0  # after the channel layer failed (Redis restarting)
REJOIN_SECONDS = 3600.0  # the hub's group membership is renewed this often
SENT_KEPT = 100_000  # conversations whose last version sent is remembered


class Console(Protocol):
    async def queue_send(self, text: str) -> None: ...


class QueueHub:
    """The agents' group's member for the consoles of one process and event loop."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.consoles: list[Console] = []
        self.pending: dict[int, dict[str, Any]] = {}  # conversation: its newest summary
        self.sent: dict[int, int] = {}  # conversation: the version the consoles last got
        self.channel = ""
        self.listener: asyncio.Task[None] | None = None
        self.flush_timer: asyncio.TimerHandle | None = None
        self.flushing: asyncio.Task[None] | None = None
        self.flushed_at = float("-inf")
        self.starting = asyncio.Lock()

    async def join(self, console: Console) -> None:
        """From now on ``console`` gets the queue's changes. The first console of the process
        starts the hub, which is in the group before this returns."""
        async with self.starting:
            if self.listener is None:
                self.channel = await self.layer.new_channel()
                await self.layer.group_add(broadcast.AGENTS_GROUP, self.channel)
                self.listener = asyncio.create_task(self._listen())
        self.consoles.append(console)

    async def leave(self, console: Console) -> None:
        with suppress(ValueError):
            self.consoles.remove(console)
        if self.consoles or self.listener is None:
            return
        self.listener.cancel()
        self.listener = None
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        self.pending.clear()
        with suppress(Exception):
            await self.layer.group_discard(broadcast.AGENTS_GROUP, self.channel)

    async def _listen(self) -> None:
        rejoining = asyncio.create_task(self._rejoin())
        try:
            while True:
                try:
                    self.take(await self.layer.receive(self.channel))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.warning("The agents' queue lost the channel layer; listening again")
                    await asyncio.sleep(RETRY_SECONDS)
                    with suppress(Exception):
                        await self.layer.group_add(broadcast.AGENTS_GROUP, self.channel)
        finally:
            rejoining.cancel()

    async def _rejoin(self) -> None:
        """Renew the hub's membership however quiet the queue is: layers that keep groups
        (channels' in-memory layer, channels-redis's core layer) let it lapse after a day.
        On its own timer: a receive cut short could lose an event."""
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            with suppress(Exception):
                await self.layer.group_add(broadcast.AGENTS_GROUP, self.channel)

    def take(self, event: dict[str, Any]) -> None:
        """An event of the agents' group: keep each conversation's newest summary."""
        items = event.get("items") or [event]
        for item in items:
            payload = item.get("payload")
            if isinstance(payload, dict) and payload.get("type") == "conversation":
                self._keep(payload)
        self._schedule()

    def _keep(self, summary: dict[str, Any]) -> None:
        """Keep ``summary`` unless the consoles have, or are about to get, a newer one."""
        conversation, version = summary["id"], summary.get("version", 0)
        pending = self.pending.get(conversation)
        newest = pending["version"] if pending else self.sent.get(conversation, -1)
        if version < newest:
            return  # announced by another process before a change it did not see yet
        self.pending[conversation] = summary

    def _schedule(self) -> None:
        if not self.pending or self.flush_timer is not None or self.flushing is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.flushed_at + FLUSH_SECONDS - loop.time())
        self.flush_timer = loop.call_later(delay, self._flush_start)

    def _flush_start(self) -> None:
        self.flush_timer = None
        self.flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            self.flushed_at = asyncio.get_running_loop().time()
            summaries, self.pending = list(self.pending.values()), {}
            if len(self.sent) > SENT_KEPT:
                self.sent.clear()  # at worst one late summary shows until the next change
            self.sent.update((s["id"], s.get("version", 0)) for s in summaries)
            text = json.dumps({"type": "queue", "conversations": summaries})
            for console in list(self.consoles):
                try:
                    await console.queue_send(text)
                except Exception:  # a socket closing meanwhile; the others still get it
                    logger.debug("A console did not take the queue", exc_info=True)
        finally:
            self.flushing = None
            self._schedule()  # what came while sending


_hubs: dict[asyncio.AbstractEventLoop, QueueHub] = {}


def hub_for(layer: Any) -> QueueHub:
    """The hub of the running event loop (one per process under an ASGI server)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        for old in [old for old in _hubs if old.is_closed()]:
            del _hubs[old]
        hub = _hubs[loop] = QueueHub(layer)
    return hub
