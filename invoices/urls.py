from django.urls import path

from invoices import views

app_name = "invoices"
urlpatterns = [
    path("<str:token>/", views.invoice_page, name="page"),
    path("<str:token>/invoice.pdf", views.invoice_pdf, name="pdf"),
    path("<str:token>/summary/", views.invoice_summary, name="summary"),
    path("<str:token>/pay/card/", views.card_payment_post, name="card_payment"),
]
