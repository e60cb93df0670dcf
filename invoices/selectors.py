"""Reads that the invoice page, the PDF, the admin and the API share."""

import hmac
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import DecimalField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from invoices.models import Invoice, InvoiceCharge, InvoiceLink, Payment, PaymentStatus
from invoices.services.links import token_hash


@dataclass(frozen=True)
class LinkLookup:
    link: InvoiceLink | None  # the live link, if the token opens one
    known: bool  # the token was issued once (it may since have expired or been revoked)


def invoice_link_lookup(token: str) -> LinkLookup:
    """What ``token`` is: a live link, a link that was issued but no longer works, or a guess.

    Only the token's SHA-256 is looked up; the stored hash is compared in constant time.
    """
    if not 20 <= len(token) <= 100:
        return LinkLookup(link=None, known=False)
    digest = token_hash(token)
    try:
        # the customer comes along: pages name their delivery channels (the chat panel)
        link = InvoiceLink.objects.select_related(
            "invoice", "invoice__series", "invoice__customer"
        ).get(token_hash=digest)
    except InvoiceLink.DoesNotExist:
        return LinkLookup(link=None, known=False)
    if not hmac.compare_digest(link.token_hash, digest):
        return LinkLookup(link=None, known=False)
    if link.revoked_at is not None or link.expires_at <= timezone.now():
        return LinkLookup(link=None, known=True)
    return LinkLookup(link=link, known=True)


def invoice_link_is_live(digest: str) -> bool:
    """Whether the link with SHA-256 ``digest`` (``InvoiceLink.token_hash``) still opens its
    invoice: neither revoked nor expired. For what holds a link open for long (the chat's
    socket, at each post), so a revocation reaches it too. One indexed query, written out:
    the ORM took four times as long to build it as the query took to run."""
    table = InvoiceLink._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {table} WHERE token_hash = %s AND revoked_at IS NULL "  # noqa: S608
            "AND expires_at > %s LIMIT 1",
            [digest, timezone.now()],
        )
        return cursor.fetchone() is not None


def invoice_get_by_token(token: str) -> Invoice | None:
    """The invoice a live link opens; None for unknown, expired and revoked tokens alike."""
    link = invoice_link_lookup(token).link
    return link.invoice if link else None


def invoice_paid(invoice_id: int) -> Decimal:
    """What booked payments have paid of the invoice (their surplus not counted). One query."""
    paid = Payment.objects.filter(invoice_id=invoice_id, status=PaymentStatus.BOOKED).aggregate(
        paid=Sum(F("amount") - F("surplus"))
    )["paid"]
    return paid or Decimal(0)


def invoice_paid_and_charged(invoice_id: int) -> tuple[Decimal, Decimal]:
    """``invoice_paid`` and ``invoice_charged`` in one query, for the page."""
    found = invoices_with_balances(Invoice.objects.filter(id=invoice_id).only("id")).first()
    if found is None:
        return Decimal(0), Decimal(0)
    return found.paid_amount, found.charged_amount  # type: ignore[attr-defined]


def invoice_charged(invoice_id: int) -> Decimal:
    """What the claim grew by after issue (reminder fees, interest, an instalment plan's
    fee). One query."""
    charged = InvoiceCharge.objects.filter(invoice_id=invoice_id).aggregate(s=Sum("amount"))["s"]
    return charged or Decimal(0)


def invoices_filtered(
    *,
    customer: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    period: str | None = None,
) -> QuerySet[Invoice]:
    """Invoices and credit notes for the API's list: ``customer`` is a customer number,
    ``period`` a month as YYYY-MM."""
    found = Invoice.objects.select_related("series", "customer")
    if customer:
        found = found.filter(customer__customer_number=customer)
    if status:
        found = found.filter(status=status)
    if kind:
        found = found.filter(kind=kind)
    if period:
        year, month = (int(part) for part in period.split("-"))
        found = found.filter(period_start__year=year, period_start__month=month)
    return found


def invoices_with_balances(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Each invoice with ``paid_amount`` (booked payments, their surplus not), ``charged_amount``
    (fees, interest) and ``credited_amount`` (by credit notes, positive): one query for a page."""
    zero = Value(Decimal(0), output_field=DecimalField(max_digits=14, decimal_places=2))
    paid = (
        Payment.objects.filter(invoice_id=OuterRef("id"), status=PaymentStatus.BOOKED)
        .values("invoice_id")
        .annotate(s=Sum(F("amount") - F("surplus")))
        .values("s")
    )
    charged = (
        InvoiceCharge.objects.filter(invoice_id=OuterRef("id"))
        .values("invoice_id")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    credited = (
        Invoice.objects.filter(credited_invoice_id=OuterRef("id"))
        .values("credited_invoice_id")
        .annotate(s=Sum("total"))
        .values("s")
    )
    return invoices.annotate(
        paid_amount=Coalesce(Subquery(paid), zero),
        charged_amount=Coalesce(Subquery(charged), zero),
        credited_amount=-Coalesce(Subquery(credited), zero),
    )


def invoice_get_for_api(invoice_id: int) -> Invoice:
    """An invoice or credit note with its balance annotations, or ``Http404``."""
    found = (
        invoices_with_balances(Invoice.objects.select_related("series", "customer"))
        .prefetch_related("lines")
        .filter(id=invoice_id)
        .first()
    )
    if found is None:
        raise Http404("No such invoice.")
    return found
