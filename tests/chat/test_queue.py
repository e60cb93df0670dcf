"""The agents' queue hub (one per process) and the bell that rings the channel layer: what
reaches the consoles, how often, and from which event loop."""

import asyncio
import json
import os
import threading
from typing import Any
from unittest import mock

import pytest
from channels.layers import InMemoryChannelLayer

from chat import broadcast, queue


class Console:
    """What the hub needs of an agent's socket: somewhere to send the queue's frames."""

    def __init__(self, fails: bool = False) -> None:
        self.frames: list[dict[str, Any]] = []
        self.fails = fails

    async def queue_send(self, text: str) -> None:
        if self.fails:
            raise ConnectionError("the socket closed meanwhile")
        self.frames.append(json.loads(text))


def summary(conversation: int, last_seq: int, version: int | None = None) -> dict[str, Any]:
    return {
        "type": "conversation",
        "id": conversation,
        "last_seq": last_seq,
        "status": "waiting",
        "version": last_seq if version is None else version,
    }


async def announce(layer: InMemoryChannelLayer, *summaries: dict[str, Any]) -> None:
    """As ``chat.services`` does: the summary to the agents' group (with other payloads of
    the change to other groups)."""
    items = [{"payload": s, "audience": ""} for s in summaries]
    await layer.group_send(broadcast.AGENTS_GROUP, {"type": "chat.events", "items": items})


def end_the_interval(hub: queue.QueueHub) -> None:
    """What the hub's timer does when the interval ends (the tests set one no run outlasts)."""
    assert hub.flush_timer is not None
    hub.flush_timer.cancel()
    hub.flush_timer = None
    hub._flush_start()


async def started(*consoles: Console) -> tuple[InMemoryChannelLayer, queue.QueueHub]:
    """A hub on a layer of its own, with ``consoles`` joined."""
    layer = InMemoryChannelLayer()
    hub = queue.QueueHub(layer)
    for console in consoles:
        await hub.join(console)
    return layer, hub


async def until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not in time")


def test_the_first_change_passes_at_once_and_later_ones_together_with_the_newest_of_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an interval no test run outlasts: the second frame leaves only when the test lets it
    monkeypatch.setattr(queue, "FLUSH_SECONDS", 60.0)

    async def scenario() -> None:
        first, second = Console(), Console()
        layer, hub = await started(first, second)
        # when a conversation changes in a quiet queue, every console has it at once
        await announce(layer, summary(1, 1))
        await until(lambda: len(first.frames) == 1 and len(second.frames) == 1)
        assert first.frames == [{"type": "queue", "conversations": [summary(1, 1)]}]
        # then three changes within the interval, two of them to conversation 1
        await announce(layer, summary(1, 2))
        await announce(layer, summary(2, 1))
        await announce(layer, summary(1, 3))
        await until(lambda: len(hub.pending) == 2 and hub.pending[1]["last_seq"] == 3)
        assert len(first.frames) == 1  # held until the interval ends
        assert hub.flush_timer is not None
        assert hub.flush_timer.when() == pytest.approx(hub.flushed_at + 60.0)
        # when it ends, one frame with the newest summary of each
        end_the_interval(hub)
        await until(lambda: len(second.frames) == 2)
        expected = {"type": "queue", "conversations": [summary(1, 3), summary(2, 1)]}
        assert first.frames[1] == second.frames[1] == expected
        await hub.leave(first)
        await hub.leave(second)

    asyncio.run(scenario())


def test_a_summary_older_than_what_the_consoles_have_is_not_passed_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queue, "FLUSH_SECONDS", 60.0)

    async def scenario() -> None:
        console = Console()
        layer, hub = await started(console)
        # given the consoles got version 3 of conversation 1 (claimed: same last message)
        await announce(layer, summary(1, 2, version=3))
        await until(lambda: len(console.frames) == 1)
        # when version 2, announced by another process, arrives late, with a change of 2
        await announce(layer, summary(1, 2, version=2))
        await announce(layer, summary(2, 1))
        await until(lambda: 2 in hub.pending)
        assert 1 not in hub.pending
        # and while a newer one waits, an older one does not replace it
        await announce(layer, summary(2, 3))
        await announce(layer, summary(2, 2))
        await until(lambda: hub.pending[2]["last_seq"] == 3)
        # then only the news is passed on
        end_the_interval(hub)
        await until(lambda: len(console.frames) == 2)
        assert console.frames[1]["conversations"] == [summary(2, 3)]
        await hub.leave(console)

    asyncio.run(scenario())


def test_a_console_that_fails_does_not_keep_the_queue_from_the_others() -> None:
    async def scenario() -> None:
        closing, open_ = Console(fails=True), Console()
        layer, hub = await started(closing, open_)
        await announce(layer, summary(7, 1))
        await until(lambda: len(open_.frames) == 1)
        await hub.leave(closing)
        await hub.leave(open_)

    asyncio.run(scenario())


class SlowLayer(InMemoryChannelLayer):
    """One whose calls give the event loop a turn, as a layer over the network does."""

    async def new_channel(self, prefix: str = "specific.") -> str:
        await asyncio.sleep(0)
        return await super().new_channel(prefix)

    async def group_add(self, group: str, channel: str) -> None:
        await asyncio.sleep(0)
        await super().group_add(group, channel)


def test_the_last_console_to_leave_takes_the_hub_out_of_the_group() -> None:
    async def scenario() -> None:
        layer = SlowLayer()
        hub = queue.QueueHub(layer)
        first, second = Console(), Console()
        await asyncio.gather(hub.join(first), hub.join(second))
        # two consoles joining at once start one listener, one member of the group
        assert list(layer.groups[broadcast.AGENTS_GROUP]) == [hub.channel]
        await hub.leave(first)
        assert hub.listener is not None
        await hub.leave(second)
        assert hub.listener is None
        assert broadcast.AGENTS_GROUP not in layer.groups
        # and the next console starts it again
        third = Console()
        await hub.join(third)
        await announce(layer, summary(3, 1))
        await until(lambda: len(third.frames) == 1)
        await hub.leave(third)

    asyncio.run(scenario())


def test_each_event_loop_has_its_own_hub() -> None:
    layer = InMemoryChannelLayer()

    async def hub() -> queue.QueueHub:
        return queue.hub_for(layer)

    async def twice() -> tuple[queue.QueueHub, queue.QueueHub]:
        return queue.hub_for(layer), queue.hub_for(layer)

    one, same = asyncio.run(twice())
    assert one is same
    assert asyncio.run(hub()) is not one


# --- the bell ----------------------------------------------------------------------------


class RemoteLayer:
    """A layer outside the process, as Redis is: records each group_send and its loop."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], asyncio.AbstractEventLoop]] = []

    async def group_send(self, group: str, event: dict[str, Any]) -> None:
        self.sent.append((group, event, asyncio.get_running_loop()))


def test_a_change_rings_each_group_once_with_its_payloads_in_order() -> None:
    layer = RemoteLayer()
    message = {"type": "message", "conversation": 1, "seq": 5}
    shown = summary(1, 5)
    with mock.patch("chat.broadcast.get_channel_layer", return_value=layer):
        broadcast.send_many(
            [
                ("chat.invoice.9", message, ""),
                ("chat.invoice.9", shown, "customer"),
                (broadcast.AGENTS_GROUP, shown, ""),
            ]
        )
    assert [(group, event) for group, event, _loop in layer.sent] == [
        (
            "chat.invoice.9",
            {
                "type": "chat.events",
                "items": [
                    {"payload": message, "audience": ""},
                    {"payload": shown, "audience": "customer"},
                ],
            },
        ),
        (
            broadcast.AGENTS_GROUP,
            {"type": "chat.events", "items": [{"payload": shown, "audience": ""}]},
        ),
    ]


def test_a_remote_layer_is_rung_from_one_loop_per_process_whatever_thread_rings() -> None:
    layer = RemoteLayer()
    ring = [("chat.invoice.1", summary(1, 1), "")]
    with mock.patch("chat.broadcast.get_channel_layer", return_value=layer):
        broadcast.send_many(ring)
        other = threading.Thread(target=broadcast.send_many, args=(ring,))
        other.start()
        other.join()
        loops = {loop for _group, _event, loop in layer.sent}
        assert len(layer.sent) == 2
        assert len(loops) == 1  # its connections opened once
        # a forked child (gunicorn --preload) has no such thread: it starts its own
        with mock.patch("chat.broadcast.os.getpid", return_value=os.getpid() + 1):
            broadcast.send_many(ring)
    assert layer.sent[-1][2] not in loops
