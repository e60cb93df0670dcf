"""The product's ASGI application plus one bare echo websocket: the baseline of bench/chat.py.

``/ws/bench-echo/<n>/`` joins the group ``bench.echo.<n>``; a JSON frame ``{"to": m, ...}``
it receives is sent, as it came, to group ``bench.echo.<m>`` through the channel layer, and
the consumers of that group send it to their clients. That is a bare channels-redis
``group_send`` between two clients: the same servers, middleware (origin check, session),
routing, JSON frames and Redis as the chat, and no database.
"""

import logging
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from config.asgi import django_asgi_app  # sets Django up, so it comes first

# isort: split
from chat.routing import websocket_urlpatterns
from chat.security import origin_validator


class EchoConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    group = ""

    async def connect(self) -> None:
        self.group = f"bench.echo.{self.scope['url_route']['kwargs']['n']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send(
            f"bench.echo.{int(content['to'])}", {"type": "bench.echo", "payload": content}
        )

    async def bench_echo(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])


# channels-redis says at INFO when a group_send found a channel over capacity (and dropped
# the event); bench/chat.py counts those lines in the servers' logs.
logging.getLogger("channels_redis").setLevel(logging.INFO)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": origin_validator(
            AuthMiddlewareStack(
                URLRouter(
                    [*websocket_urlpatterns, path("ws/bench-echo/<int:n>/", EchoConsumer.as_asgi())]
                )
            )
        ),
    }
)
