"""The finance report in the admin (``invoices.reports``): a page with charts and tables, and
the same tables as CSV. Staff who may view invoices. And the accounting export (SIE 4I,
``invoices.accounting``): a period picked, the file downloaded. Staff with the export's
permission (``invoices.export_accounting``)."""

import csv
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from core.downloads import download_response
from core.errors import DomainError
from invoices.accounting import (
    ACCOUNT_FIELDS,
    SIE_CONTENT_TYPE,
    accounting_settings,
    accounting_sie_file,
    sie_file_name,
)
from invoices.models import AccountingSettings
from invoices.reports import FinanceReport, finance_report

MONTH = r"^(19|20|21)\d{2}-(0[1-9]|1[0-2])$"
CHART_HEIGHT = 160  # px of the tallest bar


class ReportForm(forms.Form):
    start = forms.RegexField(MONTH, label=_("From month"), help_text="YYYY-MM")
    end = forms.RegexField(MONTH, label=_("To month"), help_text="YYYY-MM")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError(_("The first month comes after the last."))
        return data


def _month(text: str) -> date:
    year, month = (int(part) for part in text.split("-"))
    return date(year, month, 1)


def _month_end(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def finance_report_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("invoices.view_invoice"):
        raise PermissionDenied
    today = timezone.localdate()
    default_start = date(today.year - 1, today.month, 1)
    form = ReportForm(request.GET or {"start": f"{default_start:%Y-%m}", "end": f"{today:%Y-%m}"})
    report = None
    if form.is_valid():
        first = _month(form.cleaned_data["start"])
        report = finance_report(
            first=first, last=_month_end(_month(form.cleaned_data["end"])), today=today
        )
        download = request.GET.get("download")
        if download in {"months", "vat"}:
            return _csv(report, download)
    context = {
        **admin.site.each_context(request),
        "title": _("Finance report"),
        "form": form,
        "report": report,
        "chart": _chart(report) if report else None,
        "query": request.GET.urlencode(),
        "may_export": request.user.has_perm(EXPORT_PERMISSION),
    }
    return render(request, "admin/reports/finance.html", context)


def _chart(report: FinanceReport) -> dict[str, Any]:
    """Bars of invoiced and paid per month: heights in px of ``CHART_HEIGHT``, their tops."""
    top = max([Decimal(1)] + [max(r.invoiced, r.paid) for r in report.months])
    base = CHART_HEIGHT + 10
    bars = []
    for index, row in enumerate(report.months):
        invoiced = int(CHART_HEIGHT * max(row.invoiced, Decimal(0)) / top)
        paid = int(CHART_HEIGHT * max(row.paid, Decimal(0)) / top)
        bars.append(
            {
                "label": f"{row.month:%Y-%m}",
                "x": 10 + index * 44,
                "paid_x": 28 + index * 44,
                "invoiced": invoiced,
                "invoiced_y": base - invoiced,
                "paid": paid,
                "paid_y": base - paid,
                "invoiced_text": number_format(row.invoiced, 2, force_grouping=True),
                "paid_text": number_format(row.paid, 2, force_grouping=True),
            }
        )
    return {"width": 20 + 44 * len(bars), "bars": bars}


def _csv(report: FinanceReport, table: str) -> HttpResponse:
    """A table as CSV (comma, dot decimals, UTF-8 with BOM so spreadsheet programs read å)."""
    name = f"{table}-{report.first:%Y-%m}-{report.last:%Y-%m}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response.write("\ufeff")
    out = csv.writer(response)
    if table == "months":
        out.writerow(
            ["month", "invoices", "invoiced", "credit_notes", "credited", "paid", "open", "overdue"]
        )
        for row in report.months:
            out.writerow(
                [
                    f"{row.month:%Y-%m}",
                    row.invoices,
                    f"{row.invoiced:.2f}",
                    row.credit_notes,
                    f"{row.credited:.2f}",
                    f"{row.paid:.2f}",
                    f"{row.open:.2f}",
                    f"{row.overdue:.2f}",
                ]
            )
    else:
        out.writerow(["month", "vat_rate", "base", "vat"])
        for vat in report.vat:
            out.writerow(
                [f"{vat.month:%Y-%m}", f"{vat.rate:.2f}", f"{vat.base:.2f}", f"{vat.vat:.2f}"]
            )
    return response


# --- the accounting export ----------------------------------------------------------------------

EXPORT_PERMISSION = "invoices.export_accounting"


class DayInput(forms.DateInput):
    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


class AccountingExportForm(forms.Form):
    first = forms.DateField(label=_("From"), widget=DayInput(), help_text="YYYY-MM-DD")
    last = forms.DateField(label=_("To"), widget=DayInput(), help_text="YYYY-MM-DD")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("first"), data.get("last")
        for day in (first, last):
            if day is not None and not 1900 <= day.year <= 2199:
                raise forms.ValidationError(_("Choose days from 1900 to 2199."))
        if first and last and first > last:
            raise forms.ValidationError(_("The first day comes after the last."))
        return data


def accounting_export_view(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The period's verifications as an SIE 4I file (``?download=sie``), and the accounts
    they are booked on. The default period is last month."""
    if not request.user.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied
    last_month = (timezone.localdate().replace(day=1) - timedelta(days=1)).replace(day=1)
    form = AccountingExportForm(
        request.GET or {"first": last_month, "last": _month_end(last_month)}
    )
    if form.is_valid() and request.GET.get("download") == "sie":
        first, last = form.cleaned_data["first"], form.cleaned_data["last"]
        try:
            made = accounting_sie_file(
                first=first, last=last, generated_by=request.user.get_username()
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            return download_response(
                request,
                made,
                filename=sie_file_name(first=first, last=last),
                content_type=SIE_CONTENT_TYPE,
            )
    found = accounting_settings()
    fields = {field.name: field for field in AccountingSettings._meta.fields}
    accounts = [(fields[name].verbose_name, getattr(found, name)) for name in ACCOUNT_FIELDS]
    context = {
        **admin.site.each_context(request),
        "title": _("Accounting export (SIE 4)"),
        "form": form,
        "accounts": accounts,
        "settings": found,
        "may_change": request.user.has_perm("invoices.change_accountingsettings"),
        "settings_url": reverse("admin:invoices_accountingsettings_change", args=[found.id]),
    }
    return render(request, "admin/reports/accounting.html", context)
