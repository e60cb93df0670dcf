"""``/api/v1/``: each app's endpoints under their own prefix."""

from django.urls import include, path

from invoices.api_urls import invoices_urlpatterns, payments_urlpatterns

urlpatterns = [
    path("invoices/", include(invoices_urlpatterns)),
    path("payments/", include(payments_urlpatterns)),
]
