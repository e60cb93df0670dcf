"""Paying an invoice with Swish: the QR code a phone's Swish app scans, and the link that opens
the app on the phone the page is read on, both with every field filled in and locked.

The QR code holds Swish's "C" format, ``C<payee>;<amount>;<message>;<editable>``: the
payee's Swish number, the amount in kronor, the invoice's OCR reference as the message (so
the payment can be matched), and a mask of the fields the payer may change (1 payee,
2 amount, 4 message): 0, none of them.
"""

import json
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from urllib.parse import quote

import segno

LOCKED = 0  # no field may be changed by the payer


@dataclass(frozen=True)
class SwishPayment:
    payee: str  # the seller's Swish number, digits only
    amount: Decimal  # kronor
    message: str  # the OCR reference

    @property
    def qr_data(self) -> str:
        return f"C{self.payee};{_amount(self.amount)};{self.message};{LOCKED}"

    @property
    def app_url(self) -> str:
        """Opens the Swish app with the payment filled in (on the phone the page is on)."""
        data = {
            "version": 1,
            "payee": {"value": self.payee, "editable": False},
            "amount": {"value": float(self.amount), "editable": False},
            "message": {"value": self.message, "editable": False},
        }
        return "swish://payment?data=" + quote(json.dumps(data, separators=(",", ":")))

    def qr_svg(self, *, title: str) -> str:
        """The QR code as an inline SVG element, ``title`` its text alternative."""
        code = segno.make(self.qr_data, error="m")
        svg = str(
            code.svg_inline(
                scale=4, border=2, title=title, svgclass="swish-qr", lineclass=None, omitsize=True
            )
        )
        # an image to assistive technology, named by its title
        return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" ', 1)


def swish_payment(*, swish_number: str, amount: Decimal, ocr: str) -> SwishPayment | None:
    """The Swish payment of an invoice, or None when the seller has no Swish number or
    nothing is to be paid."""
    payee = "".join(ch for ch in swish_number if ch.isdigit())
    if not payee or amount <= 0 or not ocr:
        return None
    return SwishPayment(payee=payee, amount=amount, message=ocr)


def _amount(amount: Decimal) -> str:
    """``299`` for whole kronor, ``199.50`` otherwise."""
    return f"{amount:.0f}" if amount == amount.to_integral_value() else f"{amount:.2f}"
