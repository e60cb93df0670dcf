from django.urls import path

from billing import api_resources as api

customers_urlpatterns = [
    path("", api.CustomerListApi.as_view(), name="api-customer-list"),
    path("<str:number>/", api.CustomerDetailApi.as_view(), name="api-customer-detail"),
    path("<str:number>/consents/", api.CustomerConsentApi.as_view(), name="api-customer-consent"),
]
plans_urlpatterns = [path("", api.PlanListApi.as_view(), name="api-plan-list")]
subscriptions_urlpatterns = [
    path("", api.SubscriptionListApi.as_view(), name="api-subscription-list"),
    path("<int:subscription_id>/", api.SubscriptionDetailApi.as_view(), name="api-subscription"),
    path(
        "<int:subscription_id>/change-plan/",
        api.SubscriptionChangePlanApi.as_view(),
        name="api-subscription-change-plan",
    ),
    path(
        "<int:subscription_id>/end/", api.SubscriptionEndApi.as_view(), name="api-subscription-end"
    ),
]
