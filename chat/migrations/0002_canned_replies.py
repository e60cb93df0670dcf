"""A few canned replies agents start from (staff edit them under Chat → Canned replies).

Placeholders are filled from the conversation's invoice in the customer's language:
{name}, {amount}, {due_date}, {invoice_number}.
"""

from django.db import migrations

REPLIES = [
    (
        "Greeting",
        "Hej {name}! Jag hjälper dig gärna med faktura {invoice_number}. "
        "Vad undrar du över?",
        "Hi {name}! I'm happy to help you with invoice {invoice_number}. "
        "What would you like to know?",
    ),
    (
        "Amount and due date",
        "Faktura {invoice_number} är på {amount} och ska vara betald senast {due_date}. "
        "Bankgironummer och OCR-nummer står på fakturasidan.",
        "Invoice {invoice_number} is for {amount} and is due on {due_date}. "
        "The bankgiro and OCR numbers are on the invoice page.",
    ),
    (
        "Change of plan",
        "Du kan byta abonnemang direkt från fakturasidan. Du ser vad bytet ändrar innan du "
        "bekräftar, och du kan ångra det inom 14 dagar.",
        "You can change your plan straight from the invoice page. You see what the change "
        "does before you confirm it, and you can undo it within 14 days.",
    ),
    (
        "Usage explained",
        "Varje rad på fakturan visar vad du betalar och varför. Under Förbrukning ser du "
        "hur mycket du har använt jämfört med det som ingår i ditt abonnemang.",
        "Every line of the invoice shows what you pay and why. Under Usage you can see how "
        "much you have used compared with what your plan includes.",
    ),
    (
        "Closing",
        "Tack för att du hörde av dig, {name}! Är det något mer jag kan hjälpa dig med?",
        "Thank you for getting in touch, {name}! Is there anything else I can help you with?",
    ),
]


def create(apps, schema_editor):
    CannedReply = apps.get_model("chat", "CannedReply")
    for title, body_sv, body_en in REPLIES:
        CannedReply.objects.get_or_create(
            title=title, defaults={"body_sv": body_sv, "body_en": body_en}
        )


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
