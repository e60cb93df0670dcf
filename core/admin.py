"""What the apps' admins share."""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _

from core.api_keys import api_key_create, api_key_revoke
from core.errors import DomainError
from core.models import (
    ApiKey,
    ApiScope,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)
from core.webhooks import webhook_delivery_resend, webhook_endpoint_create


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


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("System"),
        max_length=80,
        help_text=_("The source system the key is for, e.g. CRM or mediation."),
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("What the key may do: read, write usage, write billing data, write payments."),
    )
    rate_per_minute = forms.IntegerField(
        label=_("Requests per minute"), min_value=1, max_value=100_000, initial=600
    )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Keys of the source systems: made here (the key is shown once, on the page after), listed
    by their prefix, revoked after a confirmation; never edited or deleted (the record stays)."""

    list_display = (
        "name",
        "prefix",
        "scope_list",
        "rate_per_minute",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = [
        "name",
        "prefix",
        "scopes",
        "rate_per_minute",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    ]
    exclude = ["key_hash"]

    @admin.display(description=_("Scopes"))
    def scope_list(self, key: ApiKey) -> str:
        return ", ".join(key.scopes)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        revoke = path(
            "<int:key_id>/revoke/",
            self.admin_site.admin_view(self.revoke_view),
            name="core_apikey_revoke",
        )
        return [revoke, *super().get_urls()]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ApiKeyForm(request.POST or None)
        made = None
        if request.method == "POST" and form.is_valid():
            try:
                made = api_key_create(
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    rate_per_minute=form.cleaned_data["rate_per_minute"],
                    by=request.user if isinstance(request.user, User) else None,
                )
            except DomainError as exc:
                form.add_error("name", exc.message)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "made": made,
            "title": _("New API key"),
        }
        response = render(request, "admin/core/apikey/add.html", context)
        response["Cache-Control"] = "no-store"  # the page with the key is not kept anywhere
        return response

    def revoke_view(self, request: HttpRequest, key_id: int) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        key = get_object_or_404(ApiKey, id=key_id)
        if request.method == "POST":
            api_key_revoke(key_id=key.id)
            self.message_user(
                request,
                _("The key %(key)s is revoked: it opens nothing from now on.") % {"key": key},
            )
            return HttpResponseRedirect(reverse("admin:core_apikey_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "key": key,
            "title": _("Revoke an API key"),
        }
        return render(request, "admin/core/apikey/revoke.html", context)


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        label=_("Event types"),
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: every type."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "event_types", "is_active"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        if not url.startswith(("https://", "http://")):
            raise forms.ValidationError(_("Give an http(s) address."))
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The operator's receivers. The signing secret is made with the endpoint and shown on its
    page, to set up the receiver."""

    form = WebhookEndpointForm
    list_display = ("name", "url", "is_active", "types", "created_at")
    readonly_fields = ["secret", "created_at"]

    @admin.display(description=_("Event types"))
    def types(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) or str(_("all"))

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        made = webhook_endpoint_create(
            name=obj.name, url=obj.url, event_types=obj.event_types, is_active=obj.is_active
        )
        # the admin goes on with the form's object: its log entry and the page it shows next
        obj.pk, obj.secret, obj.created_at = made.pk, made.secret, made.created_at


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RecordAdmin):
    """Every delivery with its attempts; any may be sent again."""

    list_display = (
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_attempt_at",
        "next_attempt_at",
    )
    list_filter = ("status", "endpoint", "event__type")
    list_select_related = ("event", "endpoint")
    actions = ["send_again"]

    @admin.action(description=_("Send again now"), permissions=["resend"])
    def send_again(self, request: HttpRequest, queryset: Any) -> None:
        ids = list(queryset.values_list("id", flat=True))
        for delivery_id in ids:
            webhook_delivery_resend(delivery_id=delivery_id)
        self.message_user(
            request, _("%(count)s delivery(ies) will be sent again now.") % {"count": len(ids)}
        )

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("core.change_webhookdelivery")


@admin.register(WebhookEvent)
class WebhookEventAdmin(RecordAdmin):
    list_display = ("id", "type", "created_at")
    list_filter = ("type",)
