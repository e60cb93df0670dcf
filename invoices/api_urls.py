from django.urls import path

from invoices import api

urlpatterns = [
    path("bgmax-imports/", api.BgMaxImportCreateApi.as_view(), name="api-bgmax-import-create"),
    path("aging/", api.AgingReportApi.as_view(), name="api-payments-aging"),
]
