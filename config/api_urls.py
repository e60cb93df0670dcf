"""``/api/v1/``: each app's endpoints under their own prefix."""

from django.urls import include, path

urlpatterns = [
    path("payments/", include("invoices.api_urls")),
    path("usage/", include("billing.api_urls")),
]
