from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views
from invoices.report_views import accounting_export_view, finance_report_view
from invoices.webhooks import stripe_webhook
from offers import views as offers_views

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path(
        "admin/reports/finance/",
        admin.site.admin_view(finance_report_view),
        name="finance_report",
    ),
    path(
        "admin/reports/accounting/",
        admin.site.admin_view(accounting_export_view),
        name="accounting_export",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[]),
        name="api-docs",
    ),
    # Stripe's events (card payments and refunds), signed with STRIPE_WEBHOOK_SECRET
    path("webhooks/stripe/", stripe_webhook, name="stripe_webhook"),
    path("i/", include("invoices.urls")),
    # The plan pages live under the invoice link they are opened from.
    path("i/<str:token>/", include("offers.urls")),
    path("i/<str:token>/chat/", include("chat.urls")),
    # The customer's ways out of an unpaid invoice: postpone, pay in parts, dispute a line.
    path("i/<str:token>/", include("dunning.urls")),
    # The support agents' console (staff of the support group).
    path("support/", include("chat.agent_urls")),
    # The undo link of a plan change's receipt (a capability, like an invoice link).
    path("u/<str:undo_token>/", offers_views.undo_by_link, name="plan_change_undo_link"),
]

handler404 = "core.views.page_not_found"
