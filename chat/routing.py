from django.urls import path

from chat.consumers import AgentConsumer, CustomerChatConsumer

websocket_urlpatterns = [
    path("ws/chat/<str:token>/", CustomerChatConsumer.as_asgi()),
    path("ws/support/", AgentConsumer.as_asgi()),
]
