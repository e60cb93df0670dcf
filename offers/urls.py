"""The plan pages under an invoice link: ``/i/<token>/plans/`` and so on (config/urls.py)."""

from django.urls import path

from offers import views

app_name = "offers"
urlpatterns = [
    path("plans/", views.plans, name="plans"),
    path("offers/<int:offer_id>/", views.offer_confirm, name="offer"),
    path("change/<int:subscription_id>/<int:plan_id>/", views.plan_confirm, name="change"),
    path("changes/<int:change_id>/", views.receipt, name="receipt"),
    path("changes/<int:change_id>/undo/", views.receipt_undo, name="receipt_undo"),
    path("consent/", views.consent_give, name="consent_give"),
    path("consent/withdraw/", views.consent_withdraw, name="consent_withdraw"),
]
