from django.urls import path

from dunning import api

urlpatterns = [
    path(
        "collection-claims/",
        api.CollectionClaimListApi.as_view(),
        name="api-collection-claim-list",
    ),
]
