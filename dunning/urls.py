"""The ways-out pages under an invoice link: ``/i/<token>/postpone/`` and so on
(config/urls.py)."""

from django.urls import path

from dunning import views

app_name = "dunning"
urlpatterns = [
    path("postpone/", views.postpone, name="postpone"),
    path("postpone/done/", views.postponement, name="postponement"),
    path("instalments/", views.instalments, name="instalments"),
    path("instalments/<int:plan_id>/", views.instalment_plan, name="instalment_plan"),
    path("dispute/<int:line_id>/", views.dispute, name="dispute"),
]
