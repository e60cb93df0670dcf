"""Conversations that start on an invoice, their messages, and who is online to answer.

A message is stored with its conversation's next sequence number before anything is
broadcast; the channel layer only rings the bell. A socket that reconnects asks for every
message after the last number it saw, so nothing is lost and nothing comes twice.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import Customer
from invoices.models import Invoice, InvoiceLine


class ConversationStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")  # in the queue: no agent has it
    ASSIGNED = "assigned", _("Assigned")  # an agent has claimed it and answers
    CLOSED = "closed", _("Closed")  # ended; the customer may rate it


CONVERSATION_TRANSITIONS: dict[str, set[str]] = {
    ConversationStatus.WAITING: {"assigned", "closed"},
    # back to the queue, or to another agent (assigned → assigned), or ended
    ConversationStatus.ASSIGNED: {"waiting", "assigned", "closed"},
    ConversationStatus.CLOSED: set(),
}


class Conversation(models.Model):
    """A chat between one invoice's customer and support. ``last_seq`` is the number of the
    newest message: a new message takes the next under this row's lock."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="conversations")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(
        max_length=10, choices=ConversationStatus, default=ConversationStatus.WAITING
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
    )
    language = models.CharField(max_length=5)
    # What the agents' queue shows of the invoice, copied when the conversation opens (an
    # issued invoice's number and buyer never change): the summary of every change reads
    # them without joining the invoice.
    invoice_number = models.CharField(max_length=40, blank=True)
    customer_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    # when the oldest customer message no agent has answered yet was written (the queue's
    # waiting time); None while nothing waits for an answer
    waiting_since = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # read receipts: the newest message each side has seen
    customer_read_seq = models.PositiveIntegerField(default=0)
    agent_read_seq = models.PositiveIntegerField(default=0)
    # when the customer's page last had the chat open (a socket connected or a heartbeat)
    customer_seen_at = models.DateTimeField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    rating_comment = models.TextField(blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    # counts the changes announced to the agents' queue, under this row's lock: of two
    # summaries that arrive out of order (posted by two processes), the queue keeps the newer
    version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "waiting_since"])]
        constraints = [
            # one open conversation per invoice: a customer who writes again continues it
            models.UniqueConstraint(
                fields=["invoice"],
                condition=~Q(status="closed"),
                name="one_open_conversation_per_invoice",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | (Q(rating__gte=1) & Q(rating__lte=5)),
                name="conversation_rating_1_to_5",
            ),
            models.CheckConstraint(
                condition=~Q(status="assigned") | Q(agent__isnull=False),
                name="assigned_conversation_has_agent",
            ),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.id} on invoice {self.invoice_id}"


class Author(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    AGENT = "agent", _("Agent")
    SYSTEM = "system", _("System")  # what an action did, in the conversation's words


class Message(models.Model):
    """One message, plain text. ``seq`` orders a conversation's messages without gaps."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveIntegerField()
    author = models.CharField(max_length=10, choices=Author)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body = models.TextField()
    # "Ask about this line": the line the question is about, and its words as the customer
    # saw them ({"title", "amount", "position"})
    line = models.ForeignKey(
        InvoiceLine, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    quote = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    # The id the customer's page gave the message, so that sending it again (over HTTP, when
    # the socket's answer did not come) stores it once; "" when none was given.
    client_id = models.CharField(max_length=36, blank=True, default="")

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=~Q(client_id=""),
                name="message_client_id_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.author}"


class AgentPresence(models.Model):
    """An agent with the console open: refreshed while its socket lives, so every process
    knows whether anyone is online to answer."""

    agent = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_presence"
    )
    last_seen = models.DateTimeField()
    connections = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.agent_id} seen {self.last_seen}"


class CannedReply(models.Model):
    """A prepared answer in each language, with placeholders {name}, {amount}, {due_date},
    {invoice_number} filled from the conversation's invoice."""

    title = models.CharField(max_length=80)
    body_sv = models.TextField()
    body_en = models.TextField()

    class Meta:
        ordering = ["title"]
        verbose_name_plural = "canned replies"

    def __str__(self) -> str:
        return self.title
