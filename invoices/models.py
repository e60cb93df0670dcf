"""Issued documents (invoices and credit notes), their numbering, links and page events.

An issued document never changes: lines and totals are snapshots taken at issue. The only
fields that move afterwards are ``status`` (through ``invoice_set_status``), the stored PDF
and ``revision`` (bumped whenever something shown on the page changes, for caching).
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from billing.models import BillRun, Customer, Subscription


class InvoiceSeries(models.Model):
    """A gapless number series. ``next_number`` is read and bumped under a row lock."""

    code = models.CharField(max_length=8, unique=True)
    prefix = models.CharField(max_length=8, blank=True)
    next_number = models.PositiveBigIntegerField(default=1)

    class Meta:
        verbose_name_plural = "invoice series"

    def __str__(self) -> str:
        return self.code


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    CREDIT_NOTE = "credit_note", _("Credit note")


class InvoiceStatus(models.TextChoices):
    ISSUED = "issued", _("Issued")  # sent, nothing paid, not yet due
    PARTLY_PAID = "partly_paid", _("Partly paid")  # some money received, rest open
    PAID = "paid", _("Paid")  # nothing left to pay
    OVERDUE = "overdue", _("Overdue")  # past due date with money open
    CREDITED = "credited", _("Credited")  # a credit note cancels it in full
    COLLECTION = "collection", _("Handed to collection")  # claim sent to debt collection


# An invoice in one of these has money open: the page asks for it and a payment may pay it.
OPEN_STATUSES = frozenset({"issued", "partly_paid", "overdue", "collection"})
# Which status may follow which; ``invoice_set_status`` refuses anything else.
INVOICE_STATUS_TRANSITIONS: dict[str, set[str]] = {
    InvoiceStatus.ISSUED: {"partly_paid", "paid", "overdue", "credited"},
    # (back to issued, or from paid to open again: a refunded card payment)
    InvoiceStatus.PARTLY_PAID: {"paid", "overdue", "credited", "issued"},
    InvoiceStatus.OVERDUE: {"partly_paid", "paid", "credited", "collection"},
    InvoiceStatus.PAID: {"credited", "partly_paid", "issued", "overdue"},
    InvoiceStatus.CREDITED: set(),
    InvoiceStatus.COLLECTION: {"paid"},
}


class Invoice(models.Model):
    kind = models.CharField(
        _("kind"), max_length=12, choices=DocumentKind, default=DocumentKind.INVOICE
    )
    # A bill run writes a million of these a month, each row into every index: so no index
    # of its own where a constraint's or an index's leading column serves (``series``:
    # ``gapless_number_unique``; ``customer``: the customer's invoices by period), and only
    # the few credit notes in the index of what they credit.
    series = models.ForeignKey(InvoiceSeries, on_delete=models.PROTECT, db_index=False)
    number = models.PositiveBigIntegerField()
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="invoices",
        verbose_name=_("customer"),
        db_index=False,
    )
    bill_run = models.ForeignKey(
        BillRun, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    credited_invoice = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_notes",
        db_index=False,  # (``invoice_credited_invoice``: credit notes only)
    )
    credit_reason = models.CharField(max_length=300, blank=True)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField()
    invoice_date = models.DateField(_("invoice date"))
    due_date = models.DateField(_("due date"))
    # unique (``invoice_ocr_unique``); None on credit notes, which NULL lets share
    ocr = models.CharField(max_length=25, null=True, blank=True)  # noqa: DJ001
    currency = models.CharField(max_length=3, default="SEK")
    language = models.CharField(max_length=2)
    # Snapshots taken at issue: who bought, who sold, what each subscription was and used.
    buyer = models.JSONField()
    seller = models.JSONField()
    subscriptions = models.JSONField(default=list)
    vat_summary = models.JSONField(default=list)  # [{"rate", "base", "vat"}] as strings
    net_total = models.DecimalField(max_digits=14, decimal_places=2)
    vat_total = models.DecimalField(max_digits=14, decimal_places=2)
    rounding = models.DecimalField(max_digits=6, decimal_places=2)
    total = models.DecimalField(
        _("total"), max_digits=14, decimal_places=2
    )  # payable, whole kronor
    status = models.CharField(
        _("status"), max_length=12, choices=InvoiceStatus, default=InvoiceStatus.ISSUED
    )
    revision = models.PositiveIntegerField(default=1)
    template_version = models.PositiveSmallIntegerField(default=1)
    pdf = models.FileField(upload_to="invoices/%Y/%m/", blank=True)
    issued_at = models.DateTimeField()

    class Meta:
        ordering = ["-invoice_date", "-number"]
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        constraints = [
            models.UniqueConstraint(fields=["series", "number"], name="gapless_number_unique"),
            # a constraint, not a unique field: that would add a second index, for LIKE,
            # that no query uses
            models.UniqueConstraint(fields=["ocr"], name="invoice_ocr_unique"),
            models.UniqueConstraint(
                fields=["customer", "period_start"],
                condition=Q(kind="invoice"),
                name="one_invoice_per_customer_period",
            ),
            models.CheckConstraint(
                condition=Q(kind="invoice", credited_invoice__isnull=True)
                | Q(kind="credit_note", credited_invoice__isnull=False),
                name="credit_note_refers_to_invoice",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-period_start"]),
            models.Index(
                fields=["credited_invoice"],
                condition=Q(credited_invoice__isnull=False),
                name="invoice_credited_invoice",
            ),
        ]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return f"{self.series.prefix}{self.number}"

    @property
    def is_credit_note(self) -> bool:
        return self.kind == DocumentKind.CREDIT_NOTE


class LineKind(models.TextChoices):
    FEE = "fee", _("Monthly fee")
    DISCOUNT = "discount", _("Discount")
    DATA_OVERAGE = "data_overage", _("Data beyond included")
    VOICE_OVERAGE = "voice_overage", _("Calls beyond included")
    SMS_OVERAGE = "sms_overage", _("SMS beyond included")
    ROAMING = "roaming", _("Roaming outside EU/EEA")
    ONE_OFF = "one_off", _("One-off charge")
    CORRECTION = "correction", _("Correction")  # a month re-rated after an undone plan change
    ROUNDING = "rounding", _("Rounding")


class InvoiceLine(models.Model):
    """One line, snapshotted: amounts include VAT; ``texts`` holds the words per language.

    ``texts`` = {"sv": {"title": …, "detail": …}, "en": {…}}: "why it costs what it costs".
    """

    # (no index of its own: ``line_position_unique`` leads with the invoice)
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="lines", db_index=False
    )
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=LineKind)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    credited_line = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credits",
        db_index=False,  # (``line_credited_line``: credit notes' lines only)
    )
    texts = models.JSONField()
    quantity = models.DecimalField(max_digits=14, decimal_places=3, default=1)
    unit = models.CharField(max_length=12, blank=True)
    unit_price = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=2)  # incl. VAT
    vat_rate = models.DecimalField(max_digits=4, decimal_places=2)
    vat_amount = models.DecimalField(max_digits=14, decimal_places=2)
    service_from = models.DateField(null=True, blank=True)
    service_to = models.DateField(null=True, blank=True)

    # What credit notes have left of the line to credit: set by
    # invoices.services.credit_notes.invoice_lines_creditable, never stored.
    remaining: Decimal

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="line_position_unique")
        ]
        indexes = [
            models.Index(
                fields=["credited_line"],
                condition=Q(credited_line__isnull=False),
                name="line_credited_line",
            )
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}#{self.position} {self.kind}"

    def text(self, language: str) -> dict[str, str]:
        return self.texts.get(language) or self.texts.get("en") or next(iter(self.texts.values()))


class InvoiceLink(models.Model):
    """A capability URL for one invoice. Only the SHA-256 of the token is stored."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=20, default="issued", help_text="issued, resent")

    def __str__(self) -> str:
        return f"link for {self.invoice_id}"


class PageEventKind(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    FIRST_OPENED = "first_opened", _("First opened")
    OPENED_AGAIN = "opened_again", _("Opened again")
    PDF_DOWNLOADED = "pdf_downloaded", _("PDF downloaded")
    LINK_RESENT = "link_resent", _("Link re-sent")
    LINK_REVOKED = "link_revoked", _("Link revoked")


class PageEvent(models.Model):
    """What happened with an invoice's page, for analytics. Append-only."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=PageEventKind)
    occurred_at = models.DateTimeField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["invoice", "occurred_at", "id"]
        indexes = [models.Index(fields=["invoice", "kind"])]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.kind}"


class OutboundMessage(models.Model):
    """Every e-mail and SMS sent to a customer, whatever backend carried it."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        SMS = "sms", "SMS"

    invoice = models.ForeignKey(
        Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    channel = models.CharField(max_length=5, choices=Channel)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=200, blank=True)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.channel} to {self.to}"


# --- payments --------------------------------------------------------------------------------


class PaymentMethod(models.TextChoices):
    BANKGIRO = "bankgiro", _("Bankgiro")  # from a BgMax file
    CARD = "card", _("Card")
    SWISH = "swish", _("Swish")
    MANUAL = "manual", _("Registered by hand")
    # The surplus of the customer's earlier payments spent on an invoice (``CreditUse`` says
    # which): not money received, money moved.
    CREDIT = "credit", _("Credit balance")


class PaymentStatus(models.TextChoices):
    BOOKED = "booked", _("Booked")  # on its invoice
    UNMATCHED = "unmatched", _("Unmatched")  # no open invoice of its reference: a person decides


class ChargeKind(models.TextChoices):
    REMINDER_FEE = "reminder_fee", _("Reminder fee")  # påminnelseavgift, at most 60 kr a claim
    INTEREST = "interest", _("Late-payment interest")  # dröjsmålsränta from the due date
    INSTALMENT_FEE = "instalment_fee", _("Instalment plan fee")  # at most 170 kr, agreed


class InvoiceCharge(models.Model):
    """Money the claim grew by after issue: a reminder fee, late-payment interest, an
    instalment plan's fee. The invoice itself never changes; what is owed on it is its total,
    less credit notes, plus its charges, less what payments paid (``invoice_balance``).

    ``texts`` = {"sv": {"title": …, "detail": …}, "en": {…}}: what it is, its legal basis, how
    it was computed and how to avoid the next one, as the page and the PDF show it.
    ``source_key`` names what caused it (a policy step on an invoice, an interest period, a
    plan), so the task or click that adds it twice adds it once.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(max_length=16, choices=ChargeKind)
    amount = models.DecimalField(max_digits=14, decimal_places=2)  # kronor, no VAT on these
    texts = models.JSONField()
    charged_on = models.DateField()  # the legal date it was added (Europe/Stockholm)
    # interest: the days it runs over and the yearly rate in force (percent)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    source_key = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["invoice", "charged_on", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="charge_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on {self.invoice_id}"

    def text(self, language: str) -> dict[str, str]:
        return self.texts.get(language) or self.texts.get("en") or next(iter(self.texts.values()))


class BgMaxImport(models.Model):
    """A BgMax file as it was uploaded: read whole, its payments booked once (a file uploaded
    again is known by its SHA-256 and books nothing)."""

    sha256 = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    uploaded_at = models.DateTimeField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    written_at = models.DateTimeField(help_text="When Bankgirot wrote the file")
    deposits = models.PositiveIntegerField()
    payments = models.PositiveIntegerField(help_text="Payments and deductions in the file")
    booked = models.PositiveIntegerField(help_text="Booked on an invoice")
    unmatched = models.PositiveIntegerField(help_text="Left for a person to match")
    already_booked = models.PositiveIntegerField(help_text="Booked before, from another file")

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return self.name


class Payment(models.Model):
    """Money received, once (``source_key``), on an invoice or waiting to be matched.

    ``amount`` is what came in (kronor; negative for a bank's deduction, and for money given
    back to a card, ``CardRefund``); ``surplus`` is the part of it beyond what the invoice had
    open, the customer's money to give back or use. The surpluses of a customer's booked
    payments, less what was spent of them (``surplus_used``, each krona a ``CreditUse``), are
    the customer's credit balance; a payment of method ``credit`` is such a spending on an
    invoice.

    ``surplus`` is where the surplus is now. How it got there is a history that never
    changes, for the books: ``surplus_at_booking`` (what the booking on the invoice left
    over), plus each later ``SurplusMove``, so ``surplus == surplus_at_booking + the sum of
    surplus_moves`` at all times.
    """

    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments",
        verbose_name=_("invoice"),
    )
    status = models.CharField(_("status"), max_length=10, choices=PaymentStatus)
    method = models.CharField(_("method"), max_length=10, choices=PaymentMethod)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    surplus = models.DecimalField(_("surplus"), max_digits=14, decimal_places=2, default=Decimal(0))
    # what its booking on an invoice left over (kronor): written with the booking (or with the
    # match, for a payment matched by hand) and never changed afterwards
    # (a default in the database too: code of the release before, still booking while the
    # migration runs, leaves the column out)
    surplus_at_booking = models.DecimalField(
        _("surplus at booking"),
        max_digits=14,
        decimal_places=2,
        default=Decimal(0),
        db_default=Decimal(0),
    )
    # what later payments from the credit balance spent of the surplus: the sum of this
    # payment's ``credit_uses``, moved under this row's lock
    surplus_used = models.DecimalField(
        _("surplus spent"), max_digits=14, decimal_places=2, default=Decimal(0)
    )
    currency = models.CharField(_("currency"), max_length=3, default="SEK")
    paid_on = models.DateField(_("paid on"))
    booked_at = models.DateTimeField(_("booked at"))
    reference = models.CharField(_("reference"), max_length=35, blank=True)
    payer = models.CharField(_("payer"), max_length=120, blank=True)
    # where it came from, the same for the same payment however often it is delivered
    # (unique: ``payment_source_key_unique``)
    source_key = models.CharField(_("source key"), max_length=120)
    bgmax_import = models.ForeignKey(
        BgMaxImport,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rows",
        verbose_name=_("BgMax file"),
    )
    record = models.PositiveIntegerField(
        _("record"), null=True, blank=True, help_text=_("In the BgMax file")
    )
    # who put an unmatched payment on its invoice by hand, and when (empty when it was
    # matched by its reference)
    matched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # (``payment_matched_by``: the few matched by hand)
        verbose_name=_("matched by"),
    )
    matched_at = models.DateTimeField(_("matched at"), null=True, blank=True)

    class Meta:
        ordering = ["-booked_at", "-id"]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        # Every payment booked writes each of these: a day's file writes hundreds of
        # thousands. So the unique source key is a constraint (a unique field would add a
        # second index, for LIKE, that no query uses), and the index of who matched a
        # payment by hand holds only those.
        indexes = [
            models.Index(fields=["status", "-booked_at"]),
            models.Index(
                fields=["matched_by"],
                condition=Q(matched_by__isnull=False),
                name="payment_matched_by",
            ),
            # the credit balances' sources: the few payments with surplus left, which each
            # bill run chunk and each page's cache key look up by customer
            models.Index(
                fields=["invoice"],
                condition=Q(status="booked", surplus__gt=F("surplus_used")),
                name="payment_credit_left",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source_key"], name="payment_source_key_unique"),
            models.CheckConstraint(
                condition=Q(status="unmatched") | Q(invoice__isnull=False),
                name="booked_payment_has_invoice",
            ),
            models.CheckConstraint(
                condition=Q(surplus__gte=0), name="payment_surplus_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(surplus_at_booking__gte=0),
                name="payment_surplus_at_booking_not_negative",
            ),
            # the credit balance is never spent twice nor below zero
            models.CheckConstraint(
                condition=Q(surplus_used__gte=0) & Q(surplus_used__lte=F("surplus")),
                name="payment_surplus_used_within_surplus",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.amount} {self.currency} ({self.status})"


class CreditUse(models.Model):
    """One part of a payment's surplus spent on an invoice: a line of the credit balance's
    ledger. ``source`` is the payment whose surplus is spent (any method, on any of the
    customer's invoices), ``payment`` the payment of method ``credit`` that pays the invoice
    with it. For every source, its ``surplus_used`` is the sum of its uses; for every
    payment of method ``credit``, its amount is the sum of its sources' uses."""

    source = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="credit_uses", verbose_name=_("from")
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="credit_sources", verbose_name=_("to")
    )
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)  # kronor
    created_at = models.DateTimeField(_("spent at"))

    class Meta:
        ordering = ["payment", "source"]
        verbose_name = _("credit balance spent")
        verbose_name_plural = _("credit balances spent")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_use_amount_positive"),
            models.UniqueConstraint(fields=["source", "payment"], name="credit_use_once"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} from payment {self.source_id} to payment {self.payment_id}"


class SurplusMoveKind(models.TextChoices):
    # after a credit note, what payments paid beyond what is owed now became their surplus
    CREDIT_NOTE = "credit_note", _("Credit note")
    # a card refund took its money from the card payment's surplus first
    REFUND = "refund", _("Card refund")


class SurplusMove(models.Model):
    """A change of a payment's surplus after its booking, on the day it happened: the ledger
    the books read where a payment's surplus (the customer's credit balance) came from and
    went. Rows are only ever added, in the transaction that moves ``Payment.surplus``.

    Why this shape. A payment's booking already carries its surplus, so the surplus at
    booking is a field of the payment (``Payment.surplus_at_booking``, one more column the
    bulk booking of a BgMax file writes at no cost) rather than a row per payment. Later
    changes are rare (a credit note on a paid invoice, a card refund), so each is a row here,
    signed: positive into the surplus (``credit_note``: paid money becomes surplus, because
    the credit note lowered what is owed), negative out of it (``refund``: the surplus went
    back to the card). Spending the surplus is not a move of it: it is ``surplus_used``,
    whose ledger is ``CreditUse`` (dated, never changed), and each spending is a payment of
    method ``credit``, dated too.

    Each move names what caused it: the credit note, or the refund's booking (the negative
    card payment), so an accounting export puts the move in that document's verification.
    """

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="surplus_moves", verbose_name=_("payment")
    )
    kind = models.CharField(_("kind"), max_length=12, choices=SurplusMoveKind)
    # kronor; positive into the surplus, negative out of it
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    moved_on = models.DateField(_("moved on"))  # the legal date (Europe/Stockholm)
    credit_note = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="surplus_moves",
        verbose_name=_("credit note"),
    )
    refund = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="surplus_moves_caused",
        verbose_name=_("refund"),
    )
    created_at = models.DateTimeField(_("recorded at"))

    class Meta:
        ordering = ["payment", "id"]
        verbose_name = _("surplus move")
        verbose_name_plural = _("surplus moves")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="surplus_move_not_zero"),
            models.CheckConstraint(
                condition=Q(kind="credit_note", credit_note__isnull=False, refund__isnull=True)
                | Q(kind="refund", refund__isnull=False, credit_note__isnull=True),
                name="surplus_move_names_its_cause",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.kind} on payment {self.payment_id}"


# --- finance staff's views in the admin ----------------------------------------------------------


class Receivables(Invoice):
    """The admin's receivables overview (open, overdue and paid invoices, aged): a view of
    invoices, not data of its own."""

    class Meta:
        proxy = True
        verbose_name = _("receivables overview")
        verbose_name_plural = _("receivables overview")


class UnmatchedPayment(Payment):
    """The admin's queue of payments waiting to be put on an invoice by hand."""

    class Meta:
        proxy = True
        verbose_name = _("unmatched payment")
        verbose_name_plural = _("unmatched payments")


# --- card payments (Stripe) ----------------------------------------------------------------------


class CardPaymentStatus(models.TextChoices):
    """Where a card payment attempt is. The order below is the order of its life: an event
    that would move an attempt back (a late "failed" after "succeeded") is ignored
    (``CARD_PAYMENT_STATUS_RANK``)."""

    CREATED = "created", _("Started")  # key saved; Stripe has not answered (yet)
    REQUIRES_ACTION = "requires_action", _("Awaiting the card holder")  # 3-D Secure
    PROCESSING = "processing", _("Processing")  # confirmed; the result comes by webhook
    FAILED = "failed", _("Failed")  # declined or given up; the customer may try again
    SUCCEEDED = "succeeded", _("Succeeded")  # Stripe has the money; booked once


CARD_PAYMENT_STATUS_RANK: dict[str, int] = {
    CardPaymentStatus.CREATED: 0,
    CardPaymentStatus.REQUIRES_ACTION: 1,
    CardPaymentStatus.PROCESSING: 2,
    CardPaymentStatus.FAILED: 3,
    CardPaymentStatus.SUCCEEDED: 4,
}


class CardPayment(models.Model):
    """One attempt to pay an invoice's open amount by card, through a Stripe PaymentIntent.

    The idempotency key is saved and committed before Stripe is called, so a retry after a
    timeout sends the same request (and Stripe answers with the first result instead of
    charging again); the card token is kept with it for the same reason (a single-use
    reference to a card Stripe holds, never card details). The money is booked once, as the
    ``payment`` (``Payment.source_key`` ``stripe:<PaymentIntent id>``), when Stripe's event
    says the PaymentIntent succeeded.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="card_payments")
    amount = models.DecimalField(max_digits=14, decimal_places=2)  # kronor asked for
    currency = models.CharField(max_length=3, default="SEK")
    idempotency_key = models.CharField(max_length=64, unique=True)
    card_token = models.CharField(max_length=64, blank=True)
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    payment_intent_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=CardPaymentStatus, default=CardPaymentStatus.CREATED
    )
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="card_payment"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["invoice", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="card_payment_amount_positive")
        ]

    def __str__(self) -> str:
        return f"card {self.amount} {self.currency} ({self.status})"


class StripeEvent(models.Model):
    """Each Stripe event applied, once: its id is stored in the same transaction as what it
    did, so a repeated or concurrent delivery finds it and does nothing."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    created = models.DateTimeField(help_text="When Stripe made the event")
    received_at = models.DateTimeField()
    applied_at = models.DateTimeField(null=True, blank=True)
    # applied (it changed something), ignored (not ours, or nothing to do), waiting (a refund
    # of a payment not booked yet: booked with it)
    outcome = models.CharField(max_length=12)
    via = models.CharField(max_length=10, help_text="webhook, or catch_up (the daily task)")

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class CardRefundStatus(models.TextChoices):
    CREATED = "created", _("Started")  # key saved; Stripe has not answered (yet)
    PENDING = "pending", _("Pending")  # Stripe is returning the money
    SUCCEEDED = "succeeded", _("Refunded")  # back on the card: booked on the invoice
    FAILED = "failed", _("Failed")  # the card could not take it back
    CANCELED = "canceled", _("Canceled")


CARD_REFUND_STATUS_RANK: dict[str, int] = {
    CardRefundStatus.CREATED: 0,
    CardRefundStatus.PENDING: 1,
    CardRefundStatus.SUCCEEDED: 2,
    CardRefundStatus.FAILED: 3,
    CardRefundStatus.CANCELED: 3,
}


class CardRefund(models.Model):
    """Money of a card payment given back to the card, through Stripe.

    Asked for by finance staff (``requested_by``; its idempotency key saved before Stripe is
    called) or made in Stripe's own dashboard (learnt from its event). When Stripe says it
    succeeded it is booked once as a negative payment on the invoice (``booked``, source key
    ``stripe-refund:<refund id>``), so the invoice has that money open again.
    """

    card_payment = models.ForeignKey(CardPayment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=14, decimal_places=2)  # kronor
    idempotency_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    stripe_refund_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    status = models.CharField(
        max_length=12, choices=CardRefundStatus, default=CardRefundStatus.CREATED
    )
    reason = models.CharField(max_length=300, blank=True)
    failure_reason = models.CharField(max_length=120, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField()
    booked = models.OneToOneField(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="card_refund"
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="card_refund_amount_positive")
        ]

    def __str__(self) -> str:
        return f"refund {self.amount} ({self.status})"


# --- the accounting export (SIE 4) ---------------------------------------------------------------


class LedgerAccount(models.Model):
    """An account of the operator's chart of accounts (kontoplan) that the accounting export
    books on: its number and name, as the file names it (``#KONTO``)."""

    number = models.CharField(
        _("number"),
        max_length=6,
        unique=True,
        validators=[
            RegexValidator(r"^[1-8][0-9]{3,5}$", _("An account number: 4 to 6 digits, 1000–8999…"))
        ],
    )
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["number"]
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


SERIES_VALIDATOR = RegexValidator(r"^[A-Z0-9]{1,4}$", _("1 to 4 capital letters or digits."))


def _account(label: Any, help_text: Any = "") -> models.ForeignKey[LedgerAccount, LedgerAccount]:
    return models.ForeignKey(
        LedgerAccount,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=label,
        help_text=help_text,
    )


class AccountingSettings(models.Model):
    """The accounts and series of the accounting export (SIE 4I): one row, edited by finance
    staff in the admin, made with the BAS chart's usual accounts on first use
    (``invoices.accounting.accounting_settings``).

    Which account takes what is written in ``invoices.accounting``; a VAT rate on an invoice
    that has no revenue account here is refused by the export rather than booked elsewhere.
    """

    receivables = _account(_("accounts receivable"), _("Kundfordringar, e.g. 1510"))
    customer_advances = _account(
        _("customer advances (credit balances)"), _("Förskott från kunder, e.g. 2420")
    )
    unmatched_payments = _account(
        _("unmatched payments"),
        _("Money received that is on no invoice yet (an OBS account, e.g. 2999)"),
    )
    rounding = _account(_("rounding to whole kronor"), _("Öresavrundning, e.g. 3740"))
    bankgiro = _account(_("bankgiro payments"), _("The bank account, e.g. 1930"))
    card = _account(_("card payments"), _("Card clearing, e.g. 1580"))
    swish = _account(_("Swish payments"), _("e.g. 1580, or the bank account 1930"))
    manual = _account(_("payments registered by hand"), _("e.g. 1930"))
    revenue_25 = _account(_("revenue, 25 % VAT"), _("e.g. 3001"))
    revenue_12 = _account(_("revenue, 12 % VAT"), _("e.g. 3002"))
    revenue_6 = _account(_("revenue, 6 % VAT"), _("e.g. 3003"))
    revenue_0 = _account(_("revenue, no VAT"), _("e.g. 3004"))
    vat_25 = _account(_("output VAT 25 %"), _("e.g. 2611"))
    vat_12 = _account(_("output VAT 12 %"), _("e.g. 2621"))
    vat_6 = _account(_("output VAT 6 %"), _("e.g. 2631"))
    reminder_fees = _account(_("reminder fees"), _("No VAT, e.g. 3591"))
    instalment_fees = _account(_("instalment plan fees"), _("No VAT, e.g. 3591"))
    interest = _account(_("late-payment interest"), _("Dröjsmålsränta, e.g. 8313"))
    series_invoices = models.CharField(
        _("series of invoices and credit notes"),
        max_length=4,
        default="F",
        validators=[SERIES_VALIDATOR],
    )
    series_payments = models.CharField(
        _("series of payments"), max_length=4, default="I", validators=[SERIES_VALIDATOR]
    )
    series_charges = models.CharField(
        _("series of fees and interest"), max_length=4, default="R", validators=[SERIES_VALIDATOR]
    )
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        _("first month of the fiscal year"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(12)],
    )
    chart_type = models.CharField(
        _("chart of accounts (#KPTYP)"),
        max_length=20,
        default="EUBAS97",
        validators=[RegexValidator(r"^[A-Z0-9]{1,20}$", _("Capital letters and digits."))],
        help_text=_("As SIE names it, e.g. EUBAS97 or BAS2014"),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("accounting export settings")
        verbose_name_plural = _("accounting export settings")
        permissions = [("export_accounting", "Can download the accounting export (SIE 4)")]
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="one_accounting_settings"),
            models.CheckConstraint(
                condition=Q(fiscal_year_start_month__gte=1, fiscal_year_start_month__lte=12),
                name="fiscal_year_start_month_valid",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Accounting export settings"))
