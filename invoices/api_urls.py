from django.urls import path

from invoices import api

# Mounted under their prefixes (config/api_urls.py): /payments/, /invoices/, /bill-runs/,
# /accounting/.
payments_urlpatterns = [
    path("", api.PaymentListApi.as_view(), name="api-payment-list"),
    path("<int:payment_id>/", api.PaymentDetailApi.as_view(), name="api-payment-detail"),
    path("bgmax-imports/", api.BgMaxImportCreateApi.as_view(), name="api-bgmax-import-create"),
    path("aging/", api.AgingReportApi.as_view(), name="api-payments-aging"),
]
invoices_urlpatterns = [
    path("", api.InvoiceListApi.as_view(), name="api-invoice-list"),
    path("<int:invoice_id>/", api.InvoiceDetailApi.as_view(), name="api-invoice-detail"),
    path("<int:invoice_id>/credit/", api.InvoiceCreditApi.as_view(), name="api-invoice-credit"),
    path("<int:invoice_id>/resend/", api.InvoiceResendApi.as_view(), name="api-invoice-resend"),
    path("<int:invoice_id>/pdf/", api.InvoicePdfApi.as_view(), name="api-invoice-pdf"),
]
bill_runs_urlpatterns = [
    path("", api.BillRunListApi.as_view(), name="api-bill-run-list"),
    path("<int:run_id>/", api.BillRunDetailApi.as_view(), name="api-bill-run-detail"),
]
accounting_urlpatterns = [
    path("sie/", api.AccountingSieApi.as_view(), name="api-accounting-sie"),
]
urlpatterns = payments_urlpatterns
