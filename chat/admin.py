"""The chat in the admin: canned replies to edit, and conversations to read (supervisors).

Conversations and messages are read-only here: they change only through the chat's services
(the console and the customer's page), and are deleted by the retention task.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from chat.models import CannedReply, Conversation, Message
from core.admin import RecordAdmin


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "body_sv", "body_en"]
    search_fields = ["title", "body_sv", "body_en"]
    fieldsets = [
        (
            None,
            {
                "fields": ["title", "body_sv", "body_en"],
                "description": "Placeholders filled from the conversation's invoice in the "
                "customer's language: {name}, {amount}, {due_date}, {invoice_number}.",
            },
        )
    ]


class MessageInline(admin.TabularInline):
    model = Message
    fields = readonly_fields = ("seq", "created_at", "author", "agent", "body", "quote")
    ordering = ["seq"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


CONVERSATION_FIELDS: tuple[str, ...] = (
    "invoice",
    "customer",
    "status",
    "agent",
    "language",
    "created_at",
    "waiting_since",
    "assigned_at",
    "closed_at",
    "last_seq",
    "customer_read_seq",
    "agent_read_seq",
    "rating",
    "rating_comment",
    "rated_at",
)


@admin.register(Conversation)
class ConversationAdmin(RecordAdmin):
    list_display = [
        "id",
        "created_at",
        "invoice_number",
        "customer",
        "status",
        "agent",
        "last_seq",
        "last_message_at",
        "rating",
    ]
    list_filter = ["status", "rating", "created_at"]
    list_select_related = ["invoice__series", "customer", "agent"]
    search_fields = ["customer__name", "customer__customer_number", "invoice__number"]
    date_hierarchy = "created_at"
    inlines = [MessageInline]
    fields = CONVERSATION_FIELDS
    readonly_fields = CONVERSATION_FIELDS

    @admin.display(description="invoice", ordering="invoice__number")
    def invoice_number(self, conversation: Conversation) -> str:
        return conversation.invoice.display_number
