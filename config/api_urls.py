"""``/api/v1/``: each app's endpoints under their own prefix."""

from django.urls import include, path

from billing.api_resources_urls import (
    customers_urlpatterns,
    plans_urlpatterns,
    subscriptions_urlpatterns,
)
from invoices.api_urls import (
    accounting_urlpatterns,
    bill_runs_urlpatterns,
    invoices_urlpatterns,
    payments_urlpatterns,
)
from offers.api_urls import offers_urlpatterns, plan_changes_urlpatterns

urlpatterns = [
    path("accounting/", include(accounting_urlpatterns)),
    path("bill-runs/", include(bill_runs_urlpatterns)),
    path("customers/", include(customers_urlpatterns)),
    path("plans/", include(plans_urlpatterns)),
    path("subscriptions/", include(subscriptions_urlpatterns)),
    path("invoices/", include(invoices_urlpatterns)),
    path("payments/", include(payments_urlpatterns)),
    path("offers/", include(offers_urlpatterns)),
    path("plan-changes/", include(plan_changes_urlpatterns)),
    path("usage/", include("billing.api_urls")),
    path("dunning/", include("dunning.api_urls")),
]
