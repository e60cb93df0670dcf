"""The product's URLs plus a bare template view: the baseline of bench/invoice_page.py.

The bare view renders the site's base template through the same middleware, server and
worker processes as the invoice page, with no database work.
"""

from django.urls import path
from django.views.generic import TemplateView

from config.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    *product_urlpatterns,
    path("bench/bare/", TemplateView.as_view(template_name="base.html"), name="bench-bare"),
]
