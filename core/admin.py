"""What the apps' admins share."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class RecordAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A record of what happened (an event, a payment, a conversation): listed and shown,
    never added, changed or deleted in the admin; every field read-only."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ViewOfModelAdmin:
    """A mixin for an admin entry that is a view of another model (a proxy model: a report,
    a queue): shown to whoever may view that model (``view_permission``, e.g.
    ``"invoices.view_invoice"``), so the proxy's own permissions need not be granted too."""

    view_permission = ""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(self.view_permission) and request.user.has_perm(self.view_permission)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)
