"""The invoice PDF, /i/<token>/invoice.pdf: what it says, that it is rendered once and stored,
and that rendering waits for the issue to commit and never reaches the network.

Invoices are issued by the real bill run; links come from ``invoice_link_create``.
"""

import io
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from pypdf import PdfReader

from core.errors import DomainError
from invoices.models import Invoice, PageEvent, PageEventKind
from invoices.page import invoice_page_context
from invoices.services import pdf as pdf_service
from invoices.services.bill_run import bill_run_execute, bill_run_start
from invoices.services.credit_notes import credit_note_issue
from invoices.services.links import invoice_link_create
from tests.factories import CustomerFactory, SubscriptionFactory, UsageRecordFactory

OCT = date(2026, 10, 1)


def _bill() -> None:
    run = bill_run_start(period=OCT, invoice_date=date(2026, 11, 1))
    bill_run_execute(bill_run_id=run.id)


def _issue(*, language: str = "sv", delivery_method: str = "email") -> Invoice:
    """A 10 GB plan with 14.2 GB used in October: 299 kr fee + 5 GB at 29 kr = 444 kr."""
    customer = CustomerFactory(
        name="Anna Lindqvist", language=language, delivery_method=delivery_method
    )
    sub = SubscriptionFactory(customer=customer, identifier="+46701234567", label="Anna")
    UsageRecordFactory(
        subscription=sub,
        quantity=Decimal("14540.8"),
        occurred_at=datetime(2026, 10, 5, 12, tzinfo=UTC),
    )
    _bill()
    return Invoice.objects.select_related("series").get(customer=customer)


def _text(data: bytes) -> str:
    """The PDF's text layer in lower case, every run of white space (line breaks and
    non-breaking spaces too) as one space: labels set in capitals by the style sheet and
    lines that wrap compare as words."""
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split()).casefold()


def _holds(text: str, *expected: str) -> None:
    for words in expected:
        assert words.casefold() in text, words


def _pages(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)


class _RenderSpy:
    """Counts calls to ``invoice_pdf_render`` (the expensive part) and lets them through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.started = threading.Event()
        self._real: Callable[..., bytes] = pdf_service.invoice_pdf_render
        self._delay = delay
        monkeypatch.setattr(pdf_service, "invoice_pdf_render", self)

    def __call__(self, invoice: Invoice, **kwargs: object) -> bytes:
        self.calls.append(invoice.id)
        self.started.set()
        time.sleep(self._delay)
        return self._real(invoice, **kwargs)


def _download(client: Client, token: str) -> tuple[int, str, bytes]:
    response = client.get(f"/i/{token}/invoice.pdf")
    # Reading a streamed body to its end closes the response (and the file) the way the
    # test client wants; closing it again here would close the test's DB connection.
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, response["Content-Type"], body


# --- what the document says ------------------------------------------------------------


@pytest.mark.django_db
def test_swedish_pdf_carries_what_a_swedish_invoice_must() -> None:
    # given an issued Swedish invoice
    invoice = _issue()
    seller = settings.SELLER
    # when its PDF is rendered
    data = pdf_service.invoice_pdf_render(invoice)
    # then it is an A4 document whose text holds every item the law asks for
    page = PdfReader(io.BytesIO(data)).pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
    _holds(
        _text(data),
        "Faktura",
        f"Fakturanummer {invoice.display_number}",
        "Fakturadatum 2026-11-01",
        "Förfallodatum 2026-12-01",
        f"OCR-nummer {invoice.ocr}",
        f"Bankgiro {seller['bankgiro']}",
        seller["name"],
        seller["address"],
        f"{seller['postal_code']} {seller['city']}",
        f"Organisationsnummer {seller['org_number']}",
        f"Momsregistreringsnummer {seller['vat_number']}",
        "Godkänd för F-skatt",
        "Anna Lindqvist Storgatan 1 111 22 Stockholm",  # the buyer
        "Anna +46701234567 · Mobil 10 GB",  # the subscription, in the page's words
        "Mobil 10 GB, månadsavgift",  # what was delivered, in the page's words
        "2026-10-01 – 2026-10-31",  # and when
        "31 dagar",  # quantity
        "5 GB 29,00 25 % 145,00",  # quantity, unit price, VAT rate, amount
        "Momssats Underlag Moms Inkl. moms 25 % 355,20 88,80 444,00",  # VAT per rate
        "Summa exkl. moms 355,20 Moms 88,80",
        "Att betala 444,00 kr",
        "Sida 1 av 1",
    )
    assert invoice.total == Decimal("444.00")


@pytest.mark.django_db
def test_english_pdf_uses_english_words_and_keeps_the_f_tax_wording() -> None:
    invoice = _issue(language="en")
    text = _text(pdf_service.invoice_pdf_render(invoice))
    _holds(
        text,
        f"Invoice number {invoice.display_number}",
        "Due date 2026-12-01",
        f"OCR reference {invoice.ocr}",
        "Mobil 10 GB, monthly fee",
        "31 days",
        "VAT rate Taxable amount VAT Incl. VAT 25 % 355.20 88.80 444.00",
        "Amount to pay 444.00 kr",
        f"VAT number {settings.SELLER['vat_number']}",
        "Godkänd för F-skatt (approved for F-tax)",
    )
    assert "fakturanummer" not in text


@pytest.mark.django_db
def test_f_tax_line_follows_the_sellers_snapshot(settings) -> None:  # type: ignore[no-untyped-def]
    # given a seller not approved for F-tax when the invoice was issued
    settings.SELLER = {**settings.SELLER, "f_tax": False}
    invoice = _issue()
    # then the PDF does not claim it
    assert "f-skatt" not in _text(pdf_service.invoice_pdf_render(invoice))


@pytest.mark.django_db
def test_lines_are_grouped_per_subscription_with_rounding_as_its_own_line() -> None:
    # given two subscriptions, one with calls beyond what is included (öre in the total)
    customer = CustomerFactory()
    first = SubscriptionFactory(customer=customer, identifier="+46700000001")
    SubscriptionFactory(customer=customer, identifier="+46700000002")
    first.plan.voice_included_minutes = 100
    first.plan.save(update_fields=["voice_included_minutes"])
    UsageRecordFactory(
        subscription=first,
        kind="voice",
        quantity=Decimal(122 * 60),
        occurred_at=datetime(2026, 10, 5, 12, tzinfo=UTC),
    )
    _bill()
    invoice = Invoice.objects.get(customer=customer)
    # when the PDF is rendered
    text = _text(pdf_service.invoice_pdf_render(invoice))
    # then each subscription has its lines and subtotal; the rounding sits with the totals
    assert invoice.rounding == Decimal("0.22")
    _holds(
        text,
        "+46700000001 Mobil 10 GB",  # the page's heading and sub-heading
        "22 min 0,49 25 % 10,78",
        "Summa för +46700000001 309,78",
        "+46700000002 Mobil 10 GB",
        "Summa för +46700000002 299,00",
        "Öresavrundning 0,22",
        "Att betala 609,00 kr",
    )
    assert text.index("+46700000001") < text.index("+46700000002")


@pytest.mark.django_db
def test_pdf_shows_the_pages_usage_chart_and_binding_period_as_of_the_invoice_date() -> None:
    # given a customer invoiced for September (3.7 GB used) and October (14.2 GB used)
    sub = SubscriptionFactory(customer=CustomerFactory(language="sv"))
    for day, mb in ((date(2026, 9, 10), "3788.8"), (date(2026, 10, 5), "14540.8")):
        UsageRecordFactory(
            subscription=sub,
            quantity=Decimal(mb),
            occurred_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
        )
    run = bill_run_start(period=date(2026, 9, 1), invoice_date=date(2026, 10, 1))
    bill_run_execute(bill_run_id=run.id)
    _bill()
    october = Invoice.objects.get(customer=sub.customer, period_start=OCT)
    page = invoice_page_context(october, "sv", today=october.invoice_date)
    # when October's PDF is rendered
    html = pdf_service.invoice_pdf_html(october)
    text = _text(pdf_service.pdf_from_html(html, template_version=october.template_version))
    # then it carries the page's six-month chart (halo-free for WeasyPrint) and binding text
    _holds(text, page["chart"]["title"], "3,7", "Bindningstid", page["binding"][0]["headline"])
    assert "paint-order" not in html
    # and a first invoice, with one month to show, has no chart
    september = Invoice.objects.get(customer=sub.customer, period_start=date(2026, 9, 1))
    assert page["chart"]["title"].casefold() not in _text(pdf_service.invoice_pdf_render(september))


@pytest.mark.django_db
def test_credit_note_pdf_is_a_kreditfaktura_referring_to_the_credited_invoice() -> None:
    # given an invoice and a credit note for its data overage
    invoice = _issue()
    overage = invoice.lines.get(kind="data_overage")
    note = credit_note_issue(
        invoice_id=invoice.id, reason="Felaktig debitering av surf", line_ids=[overage.id]
    )
    # when the credit note's PDF is rendered
    text = _text(pdf_service.invoice_pdf_render(note))
    # then it says what it is, which invoice it credits and why, and asks for no payment
    _holds(
        text,
        "Kreditfaktura",
        f"Kreditfakturanummer {note.display_number}",
        f"Krediterar faktura {invoice.display_number} ({invoice.invoice_date.isoformat()})",
        "Orsak: Felaktig debitering av surf",
        "Krediterat belopp -145,00 kr",
        "25 % -116,00 -29,00 -145,00",
        f"korrigerar faktura {invoice.display_number}",
    )
    assert "ocr-nummer" not in text
    assert "att betala" not in text


@pytest.mark.django_db
def test_pdf_is_rendered_with_the_template_of_the_invoices_version(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    invoice = _issue()
    assert pdf_service.pdf_template(1).html == "invoices/pdf/v1.html"
    # given an invoice issued under a version the mapping knows under another number
    monkeypatch.setattr(pdf_service, "PDF_TEMPLATES", {7: pdf_service.PDF_TEMPLATES[1]})
    invoice.template_version = 7
    assert "<html" in pdf_service.invoice_pdf_html(invoice)
    # then an invoice of an unknown version is refused with a clear error, not mis-rendered
    invoice.template_version = 1
    with pytest.raises(DomainError) as error:
        pdf_service.invoice_pdf_html(invoice)
    assert error.value.code == "pdf_template_unknown"


# --- no network ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://fonts.example.com/font.woff2",
        "http://127.0.0.1:8000/static/logo.png",
        "ftp://example.com/a.css",
        "file:///etc/passwd",
    ],
)
def test_url_fetcher_refuses_network_and_files_outside_the_project(url: str) -> None:
    with pytest.raises(ValueError, match="PDF rendering"):
        pdf_service._fetcher().fetch(url)


def test_url_fetcher_loads_data_urls() -> None:
    response = pdf_service._fetcher().fetch("data:text/plain;base64,aGVq")
    assert response.read() == b"hej"


def test_rendering_html_with_remote_resources_opens_no_connection(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # given markup that points at remote stylesheets, fonts and images
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    html = (
        '<html><head><link rel="stylesheet" href="https://cdn.example.com/x.css">'
        "<style>@font-face { font-family: X; src: url(https://fonts.example.com/x.woff2); }"
        '</style></head><body><p style="font-family: X">Faktura</p>'
        '<img src="http://images.example.com/logo.png"></body></html>'
    )
    # when it is rendered
    data = pdf_service.pdf_from_html(html, template_version=1)
    # then a PDF comes out and no socket was ever opened
    assert data.startswith(b"%PDF")
    assert attempts == []


# --- served once, stored after -----------------------------------------------------------


@pytest.mark.django_db
def test_get_pdf_returns_the_pdf_and_records_a_download() -> None:
    invoice = _issue()
    token = invoice_link_create(invoice=invoice)
    status, content_type, body = _download(Client(), token)
    assert status == 200
    assert content_type == "application/pdf"
    assert body.startswith(b"%PDF")
    assert invoice.display_number in _text(body)
    assert PageEvent.objects.filter(invoice=invoice, kind=PageEventKind.PDF_DOWNLOADED).count() == 1


@pytest.mark.django_db
def test_second_request_serves_the_stored_file_without_rendering_again(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    invoice = _issue()
    token = invoice_link_create(invoice=invoice)
    spy = _RenderSpy(monkeypatch)
    client = Client()
    # when the PDF is asked for twice
    first = _download(client, token)
    second = _download(client, token)
    # then it was rendered once, stored, and both answers are the same file
    assert spy.calls == [invoice.id]
    assert first == second
    invoice.refresh_from_db()
    assert invoice.pdf.name.endswith(".pdf")
    with invoice.pdf.open("rb") as stored:
        assert stored.read() == first[2]
    assert PageEvent.objects.filter(invoice=invoice, kind=PageEventKind.PDF_DOWNLOADED).count() == 2


@pytest.mark.django_db
def test_a_stored_pdf_that_went_missing_is_rendered_again(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # given a rendered PDF whose file has since disappeared from storage
    invoice = _issue()
    spy = _RenderSpy(monkeypatch)
    lost = pdf_service.invoice_pdf_ensure(invoice_id=invoice.id)
    lost.storage.delete(lost.name)
    # when it is asked for again
    stored = pdf_service.invoice_pdf_ensure(invoice_id=invoice.id)
    # then it is rendered again and stored, and the invoice points at the new file
    assert spy.calls == [invoice.id, invoice.id]
    assert stored.storage.exists(stored.name)
    invoice.refresh_from_db()
    assert invoice.pdf.name == stored.name


@pytest.mark.django_db
def test_prerender_runs_after_commit_only_for_customers_on_pdf_or_paper(
    django_capture_on_commit_callbacks, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # given customers who get a link, a PDF by e-mail and paper
    customers = {
        method: CustomerFactory(delivery_method=method)
        for method in ("email", "sms", "email_pdf", "paper")
    }
    for customer in customers.values():
        SubscriptionFactory(customer=customer)
    spy = _RenderSpy(monkeypatch)
    # when the bill run issues their invoices
    with django_capture_on_commit_callbacks() as callbacks:
        _bill()
    # then nothing is rendered before the issue commits
    assert spy.calls == []
    assert not Invoice.objects.exclude(pdf="").exists()
    # and after it, exactly the PDF and paper customers' invoices are rendered and stored
    for callback in callbacks:
        callback()
    wanted = set(
        Invoice.objects.filter(
            customer__in=[customers["email_pdf"], customers["paper"]]
        ).values_list("id", flat=True)
    )
    assert set(spy.calls) == wanted
    assert len(spy.calls) == 2
    assert set(Invoice.objects.exclude(pdf="").values_list("id", flat=True)) == wanted


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_render_once(postgres, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # given an invoice without a PDF, and a render slow enough for a second request to
    # arrive while the first is still rendering
    invoice = _issue()
    token = invoice_link_create(invoice=invoice)
    spy = _RenderSpy(monkeypatch, delay=0.5)
    answers: list[tuple[int, str, bytes]] = []
    errors: list[BaseException] = []

    def request() -> None:
        try:
            answers.append(_download(Client(), token))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when two requests come in at once
    first = threading.Thread(target=request)
    first.start()
    assert spy.started.wait(timeout=30)
    second = threading.Thread(target=request)
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)
    # then both get the same PDF, rendered once
    assert errors == []
    assert len(answers) == 2
    assert answers[0] == answers[1]
    assert answers[0][0] == 200
    assert spy.calls == [invoice.id]


@pytest.mark.django_db
def test_a_head_request_neither_renders_nor_counts_as_a_download(monkeypatch) -> None:
    # given an invoice whose PDF is not rendered yet
    invoice = _issue()
    token = invoice_link_create(invoice=invoice)
    spy = _RenderSpy(monkeypatch)
    # when a link scanner sends HEAD
    response = Client().head(f"/i/{token}/invoice.pdf")
    # then it is refused, nothing is rendered and no download is recorded
    assert response.status_code == 405
    assert spy.calls == []
    assert not PageEvent.objects.filter(kind=PageEventKind.PDF_DOWNLOADED).exists()
