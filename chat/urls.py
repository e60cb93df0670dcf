"""The customer's chat under an invoice link: ``/i/<token>/chat/...`` (config/urls.py)."""

from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("messages/", views.message_post, name="post"),
    path("messages/list/", views.messages_list, name="list"),
    path("rating/", views.rating_post, name="rating"),
]
