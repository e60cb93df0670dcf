"""python manage.py demo_links [--base-url URL]: fresh links to telling demo invoices.

Picks invoices of the latest billed month by what they show (overage, roaming, a household,
a binding period ending soon...), creates a new link for each (links are stored hashed, so an
old one cannot be printed again), and prints the finance admin and the support console with
their demo logins.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Sum
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone

from billing.demo import FINANCE_USERNAME, SUPPORT_USERNAME, finance_password, support_password
from billing.rating import MB_PER_GB
from invoices.models import DocumentKind, Invoice, InvoiceLine
from invoices.services.links import invoice_link_create


@dataclass(frozen=True)
class Pick:
    what: str  # the story this invoice tells, in a few words
    invoice: Invoice
    detail: str


def _gb(mb: str | Decimal) -> str:
    return f"{Decimal(mb) / MB_PER_GB:.1f} GB"


def _kr(amount: Decimal) -> str:
    return f"{amount:,.0f} kr".replace(",", " ")


def _mobiles(invoice: Invoice) -> list[dict]:
    return [s for s in invoice.subscriptions if s["plan_kind"] == "mobile"]


def _line_sums(invoices: list[Invoice], kind: str) -> dict[int, Decimal]:
    rows = (
        InvoiceLine.objects.filter(invoice__in=invoices, kind=kind)
        .values_list("invoice_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return dict(rows)


def heavy_user(invoices: list[Invoice]) -> Pick | None:
    overage = _line_sums(invoices, "data_overage")
    if not overage:
        return None
    invoice = next(i for i in invoices if i.id == max(overage, key=overage.__getitem__))
    sub = max(_mobiles(invoice), key=lambda s: Decimal(s["used"]["data_mb"]))
    return Pick(
        "Heavy user paying for extra data",
        invoice,
        f"{_gb(sub['used']['data_mb'])} on {sub['plan_name']}, "
        f"{_kr(overage[invoice.id])} beyond the plan",
    )


def light_user_on_big_plan(invoices: list[Invoice]) -> Pick | None:
    best: tuple[Decimal, Invoice, dict] | None = None
    for invoice in invoices:
        if len(invoice.subscriptions) != 1:
            continue
        sub = invoice.subscriptions[0]
        included = sub["included"]["data_gb"]
        big = sub["plan_kind"] == "mobile" and (included is None or Decimal(included) >= 30)
        used = Decimal(sub["used"]["data_mb"])
        if big and used < 3 * MB_PER_GB and (best is None or used < best[0]):
            best = (used, invoice, sub)
    if best is None:
        return None
    used, invoice, sub = best
    return Pick(
        "Light user on a big plan",
        invoice,
        f"{_gb(used)} used on {sub['plan_name']} at {_kr(Decimal(sub['agreed_price']))}/month",
    )


def offered_a_better_plan(invoices: list[Invoice]) -> Pick | None:
    """A customer who is shown a usage-based offer with the biggest saving."""
    from offers.models import Group, Offer, OfferStatus

    offer = (
        Offer.objects.filter(
            customer_id__in=[i.customer_id for i in invoices],
            status=OfferStatus.OPEN,
            group=Group.TREATMENT,
            personalised=True,
            monthly_saving__gt=0,
        )
        .select_related("to_plan")
        .order_by("-monthly_saving")
        .first()
    )
    if offer is None:
        return None
    invoice = next(i for i in invoices if i.customer_id == offer.customer_id)
    return Pick(
        "An offer from their own usage",
        invoice,
        f"{offer.to_plan.name} would save {_kr(offer.monthly_saving)}/month; take it and undo it",
    )


def roamer(invoices: list[Invoice]) -> Pick | None:
    roaming = _line_sums(invoices, "roaming")
    if not roaming:
        return None
    invoice = next(i for i in invoices if i.id == max(roaming, key=roaming.__getitem__))
    line = invoice.lines.filter(kind="roaming").first()
    where = line.text("en")["title"].removeprefix("Roaming in ") if line else "abroad"
    return Pick(
        "Roamer outside the EU", invoice, f"{_kr(roaming[invoice.id])} of roaming in {where}"
    )


def household(invoices: list[Invoice]) -> Pick | None:
    families = [i for i in invoices if len(_mobiles(i)) >= 3]
    if not families:
        return None
    invoice = max(families, key=lambda i: len(i.subscriptions))
    others = len(invoice.subscriptions) - len(_mobiles(invoice))
    extra = f" and {others} broadband line" + ("s" if others > 1 else "") if others else ""
    return Pick(
        "Household on one invoice",
        invoice,
        f"{len(_mobiles(invoice))} mobile numbers{extra}, {_kr(invoice.total)} in all",
    )


def binding_ends_soon(invoices: list[Invoice], today: date) -> Pick | None:
    soon: list[tuple[date, Invoice]] = []
    for invoice in invoices:
        for sub in invoice.subscriptions:
            if sub["binding_end"]:
                ends = date.fromisoformat(sub["binding_end"])
                if today <= ends <= today + timedelta(days=60):
                    soon.append((ends, invoice))
    if not soon:
        return None
    ends, invoice = min(soon, key=lambda pair: (pair[0], pair[1].id))
    return Pick(
        "Binding period ends soon",
        invoice,
        f"ends {ends.isoformat()}, in {(ends - today).days} days",
    )


def english_speaking(invoices: list[Invoice]) -> Pick | None:
    english = [i for i in invoices if i.language == "en"]
    if not english:
        return None
    return Pick("English-speaking customer", english[0], "the page opens in English")


def demo_picks(invoices: list[Invoice], today: date) -> list[Pick]:
    """One invoice per story, each a different customer where the data allows it."""
    finders: Iterable[Callable[[list[Invoice]], Pick | None]] = (
        heavy_user,
        light_user_on_big_plan,
        offered_a_better_plan,
        roamer,
        household,
        lambda candidates: binding_ends_soon(candidates, today),
        english_speaking,
    )
    picks: list[Pick] = []
    for find in finders:
        taken = {p.invoice.id for p in picks}
        pick = find([i for i in invoices if i.id not in taken]) or find(invoices)
        if pick:
            picks.append(pick)
    return picks


def support_console_exists() -> bool:
    try:
        resolve("/support/")
    except Resolver404:
        return False
    return True


class Command(BaseCommand):
    help = (
        "Print fresh links to telling invoices of the latest month, and the finance and "
        "support logins."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default=settings.TOUCHPOINT_BASE_URL,
            help="Where the demo is served (default TOUCHPOINT_BASE_URL)",
        )

    def handle(self, *args: object, **options: str) -> None:
        base = options["base_url"].rstrip("/")
        latest = (
            Invoice.objects.filter(kind=DocumentKind.INVOICE)
            .order_by("-period_start")
            .values_list("period_start", flat=True)
            .first()
        )
        if latest is None:
            raise CommandError("No invoices yet: run `python manage.py seed_demo` first.")
        invoices = list(
            Invoice.objects.filter(kind=DocumentKind.INVOICE, period_start=latest)
            .select_related("customer", "series")
            .order_by("customer__customer_number")
        )
        picks = demo_picks(invoices, timezone.localdate())
        self.stdout.write(
            f"Customer invoices for {latest:%B %Y} "
            f"(new links, valid {settings.INVOICE_LINK_TTL_DAYS} days):"
        )
        for pick in picks:
            invoice = pick.invoice
            token = invoice_link_create(invoice=invoice, reason="demo")
            path = reverse("invoices:page", args=[token])
            self.stdout.write(
                f"  {pick.what}: {invoice.customer.name}, {pick.detail} "
                f"(invoice {invoice.display_number}, {_kr(invoice.total)})"
            )
            self.stdout.write(f"    {base}{path}")
        self.stdout.write(
            f"Finance staff: {base}/admin/  user {FINANCE_USERNAME}, password {finance_password()}"
        )
        if support_console_exists():
            self.stdout.write(
                f"Support agents (the chat console): {base}/support/  user {SUPPORT_USERNAME}, "
                f"password {support_password()}"
            )
