"""Campaigns, their offers and what customers did with them; the report per campaign.

Offers and their events are written by the services (``offers_generate``, the invoice page,
``offer_accept``) and are read-only here. Staff define campaigns, including their own
(kind "custom"), and read each campaign's report: treatment against holdout, as a table, a
chart and a CSV of the same figures (``offers.selectors.campaign_report``).

Staff read the admin in the language ``LocaleMiddleware`` picks from their browser (Swedish
by default, ``LANGUAGE_CODE``): every text here is translated, and the page's numbers use that
language's decimal separator. The CSV is the exception: see ``report_csv_view``.
"""

import csv
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, override

from core.admin import RecordAdmin
from core.errors import DomainError
from offers.charts import conversion_chart_svg, number_text, points_text, share_text
from offers.models import Campaign, CampaignKind, Offer, OfferEvent, OfferStatus
from offers.selectors import ROUGH_BELOW, CampaignReport, ReportRow, campaign_report
from offers.services import offer_create


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["code", "name", "kind", "holdout_share", "active", "description"]
        help_texts = {
            "kind": gettext_lazy(
                "Right-size, end of binding and loyalty parity offers are computed by "
                "generate_offers, from one active campaign of each kind; a custom campaign "
                "holds offers staff add themselves."
            ),
            "holdout_share": gettext_lazy(
                "Share of eligible customers who are never shown the offer, e.g. 0.100 for "
                "10 %. Customers keep the group they were first given."
            ),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, active = data.get("kind"), data.get("active")
        if active and kind and kind != CampaignKind.CUSTOM:
            # offers_generate takes one active campaign per computed kind; a second one
            # would silently never get offers.
            other = Campaign.objects.filter(kind=kind, active=True).exclude(pk=self.instance.pk)
            if (clash := other.first()) is not None:
                raise forms.ValidationError(
                    _(
                        "“%(other)s” is already the active %(kind)s campaign: deactivate it "
                        "first, or make this one custom."
                    ),
                    code="campaign_kind_active",
                    params={"other": clash, "kind": CampaignKind(kind).label},
                )
        return data


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ["name", "kind", "holdout", "active", "open_offers", "report_link"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "code"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return (
            super()
            .get_queryset(request)
            .annotate(open_offer_count=Count("offers", filter=Q(offers__status=OfferStatus.OPEN)))
        )

    @admin.display(description=gettext_lazy("Holdout"), ordering="holdout_share")
    def holdout(self, campaign: Campaign) -> str:
        return share_text(float(campaign.holdout_share))

    @admin.display(description=gettext_lazy("Open offers"), ordering="open_offer_count")
    def open_offers(self, campaign: Campaign) -> int:
        return campaign.open_offer_count  # type: ignore[attr-defined, no-any-return]

    @admin.display(description=gettext_lazy("Report"))
    def report_link(self, campaign: Campaign) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:offers_campaign_report", args=[campaign.pk]),
            _("Report"),
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:campaign_id>/report/",
                self.admin_site.admin_view(self.report_view),
                name="offers_campaign_report",
            ),
            path(
                "<int:campaign_id>/report.csv",
                self.admin_site.admin_view(self.report_csv_view),
                name="offers_campaign_report_csv",
            ),
            *super().get_urls(),
        ]

    def _report(self, request: HttpRequest, campaign_id: int) -> CampaignReport:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        return campaign_report(campaign, today=timezone.localdate())

    def report_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        report = self._report(request, campaign_id)
        chart = None
        t, h = report.treatment.conversion, report.holdout.conversion
        if t is not None and h is not None and report.uplift is not None and report.interval:
            # Built from numbers; every text in it is escaped.
            chart = mark_safe(
                conversion_chart_svg(
                    treatment=t,
                    holdout=h,
                    uplift=report.uplift,
                    low=report.interval.low,
                    high=report.interval.high,
                )
            )
        rows = [_html_row(row) for row in report.rows()]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": report.campaign,
            "title": _("Report: %(campaign)s") % {"campaign": report.campaign.name},
            "holdout": self.holdout(report.campaign),
            "report": report,
            "rows": rows,
            "conversion": next(row for row in rows if row["key"] == "conversion"),
            "chart": chart,
            "interval": _interval_text(report),
        }
        return TemplateResponse(request, "admin/offers/campaign/report.html", context)

    def report_csv_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        """The report's figures, unformatted: shares as fractions, money in kronor.

        Entirely in English, whatever the admin's language: the headers and the "figure"
        keys are identifiers integrators parse, and the "label" column stays English too, so
        a campaign's file is the same bytes whoever downloads it (files compared or handed
        on between people match) and stays ASCII (a spreadsheet opening a UTF-8 file without
        a BOM garbles å, ä, ö; a BOM would break the parsers of the header instead). Staff
        read the Swedish labels on the report page.
        """
        report = self._report(request, campaign_id)
        name = f"campaign-{report.campaign.code}-{report.today.isoformat()}.csv"
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        writer = csv.writer(response)
        writer.writerow(["figure", "label", "treatment", "holdout", "treatment_minus_holdout"])
        with override("en"):
            rows = report.rows()
        for row in rows:
            writer.writerow(
                [
                    row.key,
                    row.label,
                    _csv(row.treatment, row.kind),
                    _csv(row.holdout, row.kind),
                    _csv(row.difference, row.kind),
                ]
            )
        writer.writerow(["interval_method", "Method of the uplift's interval", "", "",
                         report.interval.method if report.interval else ""])  # fmt: skip
        writer.writerow(["report_date", "Report date", "", "", report.today.isoformat()])
        return response


def _csv(value: int | float | Decimal | None, kind: str) -> str:
    if value is None:
        return ""
    if kind == "share":
        return f"{value:.4f}"
    return str(value)


def _html(value: int | float | Decimal | None, kind: str, *, difference: bool = False) -> str:
    """A figure for the page, in the active language (its decimal separator, ``p.e.``)."""
    if value is None:
        return "–"
    if kind == "share":
        return points_text(float(value)) if difference else share_text(float(value))
    if kind == "money":
        return number_text(f"{value:+.2f}") if value else number_text("0.00")
    return f"{value:,}".replace(",", "\u202f")


NEVER_SHOWN = {"exposed", "offers_shown", "exposure"}


def _html_row(row: ReportRow) -> dict[str, str]:
    holdout = _html(row.holdout, row.kind)
    if row.key in NEVER_SHOWN and row.holdout is None:
        holdout = _("n/a: never shown")
    return {
        "key": row.key,
        "label": row.label,
        "treatment": _html(row.treatment, row.kind),
        "holdout": holdout,
        "difference": _html(row.difference, row.kind, difference=True),
    }


def _interval_text(report: CampaignReport) -> str:
    if report.interval is None:
        return _("No uplift: a group has no customers.")
    method = {
        "wald": _("Wald interval (normal approximation, unpooled)"),
        "agresti-caffo": _(
            "Agresti–Caffo interval (a conversion of 0 % or 100 % in a group gives the Wald "
            "interval no width; one success and one failure added to each group)"
        ),
    }[report.interval.method]
    low, high = report.interval.low, report.interval.high
    text = _("95 %% interval of the uplift: %(low)s to %(high)s pp; %(method)s.") % {
        "low": number_text(f"{low * 100:+.1f}"),
        "high": number_text(f"{high * 100:+.1f}"),
        "method": method,
    }
    if report.approximation_rough:
        text += " " + _(
            "Fewer than %(count)s customers changed (or did not change) plan in a group: the "
            "normal approximation is rough, read the interval as indicative."
        ) % {"count": ROUGH_BELOW}
    return text


class CustomOfferForm(forms.ModelForm):
    """Staff add an offer to a custom campaign; ``offer_create`` checks and writes it."""

    reason_sv = forms.CharField(label=gettext_lazy("Reason (Swedish)"), widget=forms.Textarea)
    reason_en = forms.CharField(label=gettext_lazy("Reason (English)"), widget=forms.Textarea)

    class Meta:
        model = Offer
        fields = ["campaign", "subscription", "to_plan", "offered_price", "valid_until"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = Campaign.objects.filter(  # type: ignore[attr-defined]
            kind="custom", active=True
        )
        self.created: Offer | None = None

    def _post_clean(self) -> None:  # the service is the validation: no model validation here
        data = self.cleaned_data
        if self.errors or not all(
            data.get(k) for k in ("campaign", "subscription", "to_plan", "offered_price")
        ):
            return
        try:
            self.created = offer_create(
                campaign_id=data["campaign"].id,
                subscription_id=data["subscription"].id,
                to_plan_id=data["to_plan"].id,
                price=data["offered_price"],
                reason={"sv": data["reason_sv"], "en": data["reason_en"]},
                valid_until=data["valid_until"],
            )
        except DomainError as exc:
            self.add_error(None, exc.message)


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    """Read-only: offers come from ``offers_generate`` and change only through the services."""

    list_display = [
        "id",
        "campaign",
        "customer",
        "subscription",
        "group",
        "personalised",
        "to_plan",
        "offered_price",
        "monthly_saving",
        "status",
        "valid_until",
        "created_at",
    ]
    list_filter = ["campaign", "group", "status", "personalised"]
    search_fields = [
        "customer__customer_number",
        "customer__name",
        "customer__email",
        "subscription__identifier",
    ]
    list_select_related = ["campaign", "customer", "subscription__plan", "to_plan"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        if obj is None:
            return []
        return [f.name for f in self.model._meta.fields]

    def get_form(self, request, obj=None, change=False, **kwargs):  # type: ignore[no-untyped-def]
        if obj is None:
            kwargs["form"] = CustomOfferForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        if obj is None:
            return [
                "campaign",
                "subscription",
                "to_plan",
                "offered_price",
                "valid_until",
                "reason_sv",
                "reason_en",
            ]
        return super().get_fields(request, obj)

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[no-untyped-def]
        obj.pk = form.created.pk  # made by offer_create in the form's clean()

    def has_add_permission(self, request: HttpRequest) -> bool:
        # by hand only into custom campaigns (the form offers no other)
        return super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(OfferEvent)
class OfferEventAdmin(RecordAdmin):
    """Read-only: exposure, opens, clicks and acceptances as the invoice page recorded them."""

    list_display = ["offer", "kind", "occurred_at", "invoice"]
    list_filter = ["kind", "offer__campaign", "offer__group"]
    search_fields = ["offer__customer__customer_number", "offer__customer__name"]
    list_select_related = ["offer", "invoice__series"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False
