from django.urls import path

from offers import api

# Mounted twice (config/api_urls.py): offers under /offers/, plan changes under /plan-changes/.
offers_urlpatterns = [
    path("", api.OfferListApi.as_view(), name="api-offer-list"),
    path("<int:offer_id>/", api.OfferDetailApi.as_view(), name="api-offer-detail"),
    path("<int:offer_id>/accept/", api.OfferAcceptApi.as_view(), name="api-offer-accept"),
]
plan_changes_urlpatterns = [
    path("", api.PlanChangeListApi.as_view(), name="api-plan-change-list"),
    path("<int:change_id>/", api.PlanChangeDetailApi.as_view(), name="api-plan-change-detail"),
    path("<int:change_id>/undo/", api.PlanChangeUndoApi.as_view(), name="api-plan-change-undo"),
]
