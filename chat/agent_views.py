"""The agent console, ``/support/...`` (chat/agent_urls.py): thin edges over chat's services.

Every page and endpoint is for support agents only (``chat.selectors.is_support_agent``):
anyone not logged in is sent to the console's login, staff outside the support group get
403. Each POST parses its form, calls one service and answers JSON to the page's script
(``Accept: application/json``) or redirects back to the conversation with a message, so the
console also works as plain forms. Refusals name what is wrong (``chat.console.error_text``).
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.contrib.auth.views import LoginView, LogoutView, redirect_to_login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from chat import console
from chat.models import Conversation
from chat.parsing import parse_int
from chat.selectors import (
    conversation_get_for_agent,
    conversation_payload,
    conversations_queue,
    invoice_get_for_agent,
    is_support_agent,
    message_payload,
)
from chat.services import (
    ChatGrant,
    chat_action_credit_note,
    chat_action_dispute_resolve,
    chat_action_instalment_plan_grant,
    chat_action_plan_change,
    chat_action_plan_change_code_send,
    chat_action_plan_change_undo,
    chat_action_postponement_grant,
    chat_action_resend_link,
    chat_message_post_agent,
    conversation_claim,
    conversation_close,
    conversation_transfer,
)
from core.errors import DomainError

View = Callable[..., HttpResponseBase]


# --- who may come in ---------------------------------------------------------------------


class SupportAuthenticationForm(AuthenticationForm):
    """The console's login: only support agents get in (like the admin's staff check)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "not_an_agent": gettext_lazy(
            "This account is not a support agent. Ask an administrator to add it to the "
            "support group."
        ),
    }

    def confirm_login_allowed(self, user: User) -> None:  # type: ignore[override]
        super().confirm_login_allowed(user)
        if not is_support_agent(user):
            raise ValidationError(self.error_messages["not_an_agent"], code="not_an_agent")


class SupportLoginView(LoginView):
    template_name = "support/login.html"
    authentication_form = SupportAuthenticationForm
    next_page = cast(str, reverse_lazy("support:queue"))
    redirect_authenticated_user = False


class SupportLogoutView(LogoutView):
    next_page = cast(str, reverse_lazy("support:login"))


def agent_required(view: View) -> View:
    """Anonymous: to the login (and back after it). Logged in but not an agent: 403."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("support:login"))
        if not is_support_agent(request.user):
            return render(request, "support/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return guarded


def _agent(request: HttpRequest) -> User:
    return cast(User, request.user)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _conversation_or_404(request: HttpRequest, conversation_id: int) -> Conversation:
    conversation = conversation_get_for_agent(conversation_id, request.user)
    if conversation is None:
        raise Http404
    return conversation


def _conversation_url(conversation_id: int, fragment: str = "") -> str:
    url = reverse("support:conversation", args=[conversation_id])
    return f"{url}#{fragment}" if fragment else url


def _refused(
    request: HttpRequest, conversation_id: int, error: DomainError, *, back: str = ""
) -> HttpResponseBase:
    """A business refusal: 409 with its code for the script, a plain message on the page
    (``back``: the query and fragment of the review to return to, else the conversation)."""
    text = console.error_text(error)
    if _wants_json(request):
        return JsonResponse({"code": error.code, "message": text}, status=409)
    messages.error(request, text)
    return HttpResponseRedirect(_conversation_url(conversation_id) + back)


def _done(
    request: HttpRequest,
    conversation_id: int,
    text: str,
    body: dict[str, Any],
    *,
    fragment: str = "",
    status: int = 200,
) -> HttpResponseBase:
    if _wants_json(request):
        return JsonResponse({"ok": True, "notice": text, **body}, status=status)
    if text:
        messages.success(request, text)
    return HttpResponseRedirect(_conversation_url(conversation_id, fragment))


# --- pages -------------------------------------------------------------------------------


def _base_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    me = _agent(request)
    return {
        "me": me,
        "me_name": me.first_name or me.get_username(),
        "queue": console.queue_items(conversations_queue(), me=me),
        "strings": console.js_strings(),
        **extra,
    }


def _config(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "agentId": _agent(request).pk,
        "language": translation.get_language() or "sv",
        "socketPath": "/ws/support/",
        "queueUrl": reverse("support:queue_json"),
        # a conversation's page, with 0 for its id
        "conversationUrl": reverse("support:conversation", args=[0]),
        "serverNow": timezone.now().isoformat(),
        "timeZone": settings.TIME_ZONE,  # message times as the page's first ones show them
        "strings": console.js_strings(),
        **extra,
    }


@never_cache
@require_safe
@agent_required
def queue_page(request: HttpRequest) -> HttpResponse:
    """The live queue of open conversations."""
    return render(request, "support/queue.html", _base_context(request, config=_config(request)))


@never_cache
@require_safe
@agent_required
def queue_json(request: HttpRequest) -> JsonResponse:
    """The queue as the socket's conversation frames (the script reloads it after a
    reconnect, when frames may have been missed)."""
    return JsonResponse({"conversations": [conversation_payload(c) for c in conversations_queue()]})


@never_cache
@require_safe
@agent_required
def conversation_page(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """One conversation, its actions, and the customer's invoice beside it."""
    conversation = _conversation_or_404(request, conversation_id)
    params = {key: request.GET.get(key, "") for key in request.GET}
    context = console.conversation_context(conversation, agent=_agent(request), params=params)
    config = _config(
        request,
        conversation={
            "id": conversation.id,
            "status": conversation.status,
            "agentId": conversation.agent_id,
            "language": conversation.language,
            "lastSeq": context["last_seq"],
            "customerReadSeq": conversation.customer_read_seq,
            "holder": context["holder"],
            "messagesUrl": reverse("support:post", args=[conversation.id]),
        },
    )
    return render(
        request, "support/conversation.html", _base_context(request, config=config, **context)
    )


@never_cache
@require_safe
@agent_required
def invoice_page(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """An invoice of a customer who has talked to support, read-only."""
    invoice = invoice_get_for_agent(invoice_id, request.user)
    if invoice is None:
        raise Http404
    panel = console.invoice_panel(invoice, language=invoice.language, creditable=False)
    return render(
        request,
        "support/invoice.html",
        _base_context(request, panel=panel, config=_config(request)),
    )


# --- the conversation's endpoints ---------------------------------------------------------


@require_POST
@agent_required
def message_post(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """The agent answers (``body``)."""
    try:
        message = chat_message_post_agent(
            conversation_id=conversation_id,
            agent=_agent(request),
            body=request.POST.get("body", ""),
        )
    except DomainError as error:
        return _refused(request, conversation_id, error)
    if _wants_json(request):
        return JsonResponse(message_payload(message), status=201)
    return HttpResponseRedirect(_conversation_url(conversation_id, "composer"))


@require_POST
@agent_required
def claim(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Take a waiting conversation; a second agent is refused (``already_claimed``)."""
    try:
        conversation = conversation_claim(conversation_id=conversation_id, agent=_agent(request))
    except DomainError as error:
        return _refused(request, conversation_id, error)
    return _done(
        request,
        conversation_id,
        _("The conversation is yours."),
        {"conversation": conversation_payload(conversation)},
        fragment="composer",
    )


@require_POST
@agent_required
def transfer(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Hand the conversation to another agent (``to_agent``), or back to the queue (empty)."""
    to_agent: User | None = None
    raw = request.POST.get("to_agent", "")
    if raw:
        found = get_user_model().objects.filter(pk=parse_int(raw, 0) or 0).first()
        if found is None:
            return _refused(request, conversation_id, DomainError(code="agent_not_found"))
        to_agent = cast(User, found)
    try:
        conversation = conversation_transfer(
            conversation_id=conversation_id, agent=_agent(request), to_agent=to_agent
        )
    except DomainError as error:
        return _refused(request, conversation_id, error)
    if to_agent is None:
        text = _("The conversation is back in the queue.")
    else:
        text = _("The conversation is now with %(agent)s.") % {
            "agent": to_agent.first_name or to_agent.get_username()
        }
    return _done(
        request, conversation_id, text, {"conversation": conversation_payload(conversation)}
    )


@require_POST
@agent_required
def close(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    try:
        conversation = conversation_close(conversation_id=conversation_id, agent=_agent(request))
    except DomainError as error:
        return _refused(request, conversation_id, error)
    return _done(
        request,
        conversation_id,
        _("The conversation is closed."),
        {"conversation": conversation_payload(conversation)},
    )


@require_POST
@agent_required
def resend_link(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Send the customer a new link to the invoice."""
    try:
        message = chat_action_resend_link(conversation_id=conversation_id, agent=_agent(request))
    except DomainError as error:
        return _refused(request, conversation_id, error)
    return _done(
        request,
        conversation_id,
        _("A new link is on its way to the customer."),
        {"message": message_payload(message)},
    )


class CreditNoteForm(forms.Form):
    line = forms.IntegerField()
    reason = forms.CharField(max_length=300, strip=True)
    # set by the review's confirm button: nothing is credited from a single click
    confirmed = forms.CharField()


def _form_refusal(form: forms.Form) -> DomainError:
    fields = form.errors.as_data()
    if "confirmed" in fields or form.data.get("confirmed") != "yes":
        return DomainError(code="confirmation_required")
    if "reason" in fields:
        code = fields["reason"][0].code
        return DomainError(
            code="credit_reason_too_long" if code == "max_length" else "credit_reason_required"
        )
    if "line" in fields:
        return DomainError(code="line_not_found")
    first = next(iter(fields.values()))[0]
    return DomainError(code="invalid", message=" ".join(first.messages))


@require_POST
@agent_required
def credit_note(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Credit one line of the invoice with a reason, after the review (``confirmed``)."""
    form = CreditNoteForm(request.POST)
    if not form.is_valid() or form.cleaned_data["confirmed"] != "yes":
        return _refused(request, conversation_id, _form_refusal(form))
    try:
        message = chat_action_credit_note(
            conversation_id=conversation_id,
            agent=_agent(request),
            line_id=form.cleaned_data["line"],
            reason=form.cleaned_data["reason"],
        )
    except DomainError as error:
        return _refused(request, conversation_id, error)
    return _done(
        request,
        conversation_id,
        _("The credit note is issued; the customer's page shows it."),
        {"message": message_payload(message)},
        fragment="invoice-panel",
    )


class PlanChangeForm(forms.Form):
    subscription = forms.IntegerField()
    plan = forms.IntegerField()
    timing = forms.CharField(required=False)
    binding_months = forms.IntegerField(required=False, min_value=0)
    idempotency_key = forms.CharField(max_length=64)
    # the one-time code the customer tells the agent, where the change needs one
    code = forms.CharField(required=False, max_length=20, strip=True)
    confirmed = forms.CharField()


@require_POST
@agent_required
def plan_change(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Change a plan on the customer's behalf, after the review (``confirmed``); a change
    that raises the price or adds a binding period also needs the customer's one-time
    ``code`` (``plan_change_code``)."""
    form = PlanChangeForm(request.POST)
    if not form.is_valid() or form.cleaned_data["confirmed"] != "yes":
        if form.data.get("confirmed") != "yes":
            return _refused(request, conversation_id, DomainError(code="confirmation_required"))
        if "idempotency_key" in form.errors:
            return _refused(request, conversation_id, DomainError(code="idempotency_key_invalid"))
        return _refused(request, conversation_id, DomainError(code="plan_not_found"))
    data = form.cleaned_data
    try:
        result = chat_action_plan_change(
            conversation_id=conversation_id,
            agent=_agent(request),
            subscription_id=data["subscription"],
            to_plan_id=data["plan"],
            idempotency_key=data["idempotency_key"],
            timing=console.parse_timing(data["timing"] or ""),
            binding_months=data["binding_months"] or 0,
            code=data["code"],
        )
    except DomainError as error:
        # back to the review: a wrong code is typed again, the code sent still stands
        sent = error.code in {"code_invalid", "code_expired"}
        back = _plan_review_back(data, timing=data["timing"] or "", code_sent=sent)
        return _refused(request, conversation_id, error, back=back)
    text = (
        _("The plan change is made; the customer has the receipt.")
        if result.created
        else _("This change was already made.")
    )
    return _done(
        request,
        conversation_id,
        text,
        {
            "plan_change": result.change.id,
            "created": result.created,
            "message": message_payload(result.message) if result.message else None,
        },
    )


def _plan_review_back(data: dict[str, Any], *, timing: str, code_sent: bool) -> str:
    """The query and fragment of the plan-change review the form came from."""
    query = {
        "plan": f"{data['subscription']}:{data['plan']}",
        "timing": timing,
        "binding_months": data["binding_months"] or 0,
    }
    if code_sent:
        query["code"] = "sent"
    return f"?{urlencode(query)}#plan-change"


class PlanChangeCodeForm(forms.Form):
    subscription = forms.IntegerField()
    plan = forms.IntegerField()
    timing = forms.CharField(required=False)
    binding_months = forms.IntegerField(required=False, min_value=0)


@require_POST
@agent_required
def plan_change_code(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Send the customer the one-time code that confirms the change under review (a higher
    price or a new binding period), and ask them in the chat to tell it; then back to the
    review, which takes the code."""
    form = PlanChangeCodeForm(request.POST)
    if not form.is_valid():
        return _refused(request, conversation_id, DomainError(code="plan_not_found"))
    data = form.cleaned_data
    binding_months = data["binding_months"] or 0
    try:
        timing = console.parse_timing(data["timing"] or "")
        message = chat_action_plan_change_code_send(
            conversation_id=conversation_id,
            agent=_agent(request),
            subscription_id=data["subscription"],
            to_plan_id=data["plan"],
            timing=timing,
            binding_months=binding_months,
        )
    except DomainError as error:
        back = _plan_review_back(data, timing=data["timing"] or "", code_sent=False)
        return _refused(request, conversation_id, error, back=back)
    text = _("The code is on its way. Enter the code the customer tells you in the chat.")
    if _wants_json(request):
        return JsonResponse({"ok": True, "notice": text, "message": message_payload(message)})
    messages.success(request, text)
    back = _plan_review_back(data, timing=timing.value, code_sent=True)
    return HttpResponseRedirect(_conversation_url(conversation_id) + back)


class PlanChangeUndoForm(forms.Form):
    change = forms.IntegerField()
    # set by the review's confirm button: nothing is undone from a single click
    confirmed = forms.CharField()


@require_POST
@agent_required
def plan_change_undo(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Undo a plan change as the customer asked, after the review (``confirmed``)."""
    form = PlanChangeUndoForm(request.POST)
    if form.data.get("confirmed") != "yes":
        return _refused(request, conversation_id, DomainError(code="confirmation_required"))
    if not form.is_valid():
        return _refused(request, conversation_id, DomainError(code="plan_change_not_found"))
    try:
        result = chat_action_plan_change_undo(
            conversation_id=conversation_id,
            agent=_agent(request),
            change_id=form.cleaned_data["change"],
        )
    except DomainError as error:
        return _refused(request, conversation_id, error)
    text = (
        _("The plan change is undone; the chat tells the customer.")
        if result.undone
        else _("This change was already undone.")
    )
    return _done(
        request,
        conversation_id,
        text,
        {
            "plan_change": result.change.id,
            "undone": result.undone,
            "message": message_payload(result.message) if result.message else None,
        },
        fragment="plan-change",
    )


# --- the customer's ways out: postpone, instalments, disputes ---------------------------------


def _granted(
    request: HttpRequest, conversation_id: int, result: ChatGrant[Any], name: str, text: str
) -> HttpResponseBase:
    """Back to the conversation's ways out (or JSON: the row's id under ``name``, whether this
    click made it, the system message), saying ``text``."""
    return _done(
        request,
        conversation_id,
        text,
        {
            name: result.row.id,
            "created": result.created,
            "message": message_payload(result.message) if result.message else None,
        },
        fragment="ways-out",
    )


class PostponementForm(forms.Form):
    new_due_date = forms.DateField(input_formats=["%Y-%m-%d"])
    idempotency_key = forms.CharField(max_length=64)
    # set by the review's confirm button: nothing is granted from a single click
    confirmed = forms.CharField()


@require_POST
@agent_required
def postponement(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Postpone the invoice's due date as agreed with the customer, after the review."""
    form = PostponementForm(request.POST)
    if form.data.get("confirmed") != "yes":
        return _refused(request, conversation_id, DomainError(code="confirmation_required"))
    if not form.is_valid():
        code = "idempotency_key_invalid" if "idempotency_key" in form.errors else "date_invalid"
        return _refused(request, conversation_id, DomainError(code=code), back="#ways-out")
    day = form.cleaned_data["new_due_date"]
    try:
        result = chat_action_postponement_grant(
            conversation_id=conversation_id,
            agent=_agent(request),
            new_due_date=day,
            idempotency_key=form.cleaned_data["idempotency_key"],
        )
    except DomainError as error:
        back = f"?{urlencode({'postpone': day.isoformat()})}#ways-out"
        return _refused(request, conversation_id, error, back=back)
    text = (
        _("The payment is postponed; the customer has the terms.")
        if result.created
        else _("This postponement was already granted.")
    )
    return _granted(request, conversation_id, result, "postponement", text)


class InstalmentPlanForm(forms.Form):
    parts = forms.IntegerField(min_value=2, max_value=6)
    charge_fee = forms.BooleanField(required=False)
    total = forms.DecimalField(max_digits=14, decimal_places=2)
    idempotency_key = forms.CharField(max_length=64)
    confirmed = forms.CharField()


@require_POST
@agent_required
def instalment_plan(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Split the invoice into the parts reviewed, with the policy's fee only where the
    customer agreed to it in the chat (``charge_fee``)."""
    form = InstalmentPlanForm(request.POST)
    if form.data.get("confirmed") != "yes":
        return _refused(request, conversation_id, DomainError(code="confirmation_required"))
    if not form.is_valid():
        code = (
            "idempotency_key_invalid"
            if "idempotency_key" in form.errors
            else "instalment_parts_invalid"
        )
        return _refused(request, conversation_id, DomainError(code=code), back="#ways-out")
    data = form.cleaned_data
    try:
        result = chat_action_instalment_plan_grant(
            conversation_id=conversation_id,
            agent=_agent(request),
            parts=data["parts"],
            charge_fee=data["charge_fee"],
            expected_total=data["total"],
            idempotency_key=data["idempotency_key"],
        )
    except DomainError as error:
        query = {"parts": data["parts"], "fee": "1" if data["charge_fee"] else "0"}
        return _refused(request, conversation_id, error, back=f"?{urlencode(query)}#ways-out")
    text = (
        _("The instalment plan is made; the customer has it.")
        if result.created
        else _("This plan was already made.")
    )
    return _granted(request, conversation_id, result, "instalment_plan", text)


class DisputeResolveForm(forms.Form):
    dispute = forms.IntegerField()
    outcome = forms.ChoiceField(choices=[("upheld", "upheld"), ("rejected", "rejected")])
    resolution = forms.CharField(max_length=300, strip=True)
    confirmed = forms.CharField()


@require_POST
@agent_required
def dispute_resolve(request: HttpRequest, conversation_id: int) -> HttpResponseBase:
    """Settle a dispute after the review: upheld (a credit note of the amount, with the
    explanation as its reason) or rejected (owed; the explanation says why)."""
    form = DisputeResolveForm(request.POST)
    if form.data.get("confirmed") != "yes":
        return _refused(request, conversation_id, DomainError(code="confirmation_required"))
    if not form.is_valid():
        fields = form.errors.as_data()
        if "resolution" in fields:
            too_long = fields["resolution"][0].code == "max_length"
            code = "resolution_too_long" if too_long else "resolution_required"
        else:
            code = "dispute_not_found"
        query = {"dispute": form.data.get("dispute", ""), "outcome": form.data.get("outcome", "")}
        return _refused(
            request, conversation_id, DomainError(code=code), back=f"?{urlencode(query)}#ways-out"
        )
    data = form.cleaned_data
    try:
        result = chat_action_dispute_resolve(
            conversation_id=conversation_id,
            agent=_agent(request),
            dispute_id=data["dispute"],
            upheld=data["outcome"] == "upheld",
            resolution=data["resolution"],
        )
    except DomainError as error:
        query = {"dispute": data["dispute"], "outcome": data["outcome"]}
        return _refused(request, conversation_id, error, back=f"?{urlencode(query)}#ways-out")
    if not result.created:
        text = _("This dispute was already resolved.")
    elif result.row.credit_note is not None:
        text = _("The dispute is upheld and credited; the customer's page shows the credit note.")
    else:
        text = _("The dispute is rejected; the customer reads why in the chat.")
    return _granted(request, conversation_id, result, "dispute", text)
