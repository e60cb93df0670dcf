"""The agent console: ``/support/...`` (config/urls.py). The agent's socket is
``/ws/support/`` (chat/routing.py)."""

from django.urls import path

from chat import agent_views as views
from chat.throttle import login_throttled

app_name = "support"
urlpatterns = [
    path("", views.queue_page, name="queue"),
    path("login/", login_throttled(views.SupportLoginView.as_view()), name="login"),
    path("logout/", views.SupportLogoutView.as_view(), name="logout"),
    path("queue/", views.queue_json, name="queue_json"),
    path("c/<int:conversation_id>/", views.conversation_page, name="conversation"),
    path("c/<int:conversation_id>/messages/", views.message_post, name="post"),
    path("c/<int:conversation_id>/claim/", views.claim, name="claim"),
    path("c/<int:conversation_id>/transfer/", views.transfer, name="transfer"),
    path("c/<int:conversation_id>/close/", views.close, name="close"),
    path("c/<int:conversation_id>/resend-link/", views.resend_link, name="resend_link"),
    path("c/<int:conversation_id>/credit-note/", views.credit_note, name="credit_note"),
    path("c/<int:conversation_id>/plan-change/", views.plan_change, name="plan_change"),
    path(
        "c/<int:conversation_id>/plan-change/code/",
        views.plan_change_code,
        name="plan_change_code",
    ),
    path(
        "c/<int:conversation_id>/plan-change/undo/",
        views.plan_change_undo,
        name="plan_change_undo",
    ),
    path("c/<int:conversation_id>/postponement/", views.postponement, name="postponement"),
    path("c/<int:conversation_id>/instalments/", views.instalment_plan, name="instalment_plan"),
    path("c/<int:conversation_id>/dispute/", views.dispute_resolve, name="dispute_resolve"),
    path("invoices/<int:invoice_id>/", views.invoice_page, name="invoice"),
]
