"""``/api/v1/``: each app's endpoints under their own prefix."""

from django.urls import include, path

from invoices.api_urls import bill_runs_urlpatterns, invoices_urlpatterns, payments_urlpatterns

urlpatterns = [
    path("bill-runs/", include(bill_runs_urlpatterns)),
    path("invoices/", include(invoices_urlpatterns)),
    path("payments/", include(payments_urlpatterns)),
    path("dunning/", include("dunning.api_urls")),
]
