from django.urls import path

from billing import api

urlpatterns = [
    path("records/", api.UsageRecordsIngestApi.as_view(), name="api-usage-records"),
    path("files/", api.UsageFileIngestApi.as_view(), name="api-usage-files"),
]
