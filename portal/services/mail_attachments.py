"""Mail attachments as queued_mail stores them: bytes carried inline, or a document named by
reference and rendered when the message is sent (an invoice PDF), so the transaction that
queues a receipt never waits on the PDF renderer.
"""
from __future__ import annotations

import base64

from portal.extensions import db
from portal.models import Invoice
from portal.services.pdf import PdfRenderError, invoice_pdf, invoice_pdf_filename
from portal.services.statements import invoice_statement


class AttachmentUnavailable(Exception):
    """Raised when a referenced attachment cannot be rendered (its invoice is gone, say)."""


def stored_attachment(item: tuple[str, str, bytes] | dict) -> dict:
    """Return the JSON a queued mail keeps for an attachment: bytes inline, or the reference."""
    if isinstance(item, dict):
        return dict(item)
    filename, mimetype, content = item
    return {"filename": filename, "mimetype": mimetype,
            "base64": base64.b64encode(content).decode()}


def invoice_pdf_attachment(invoice: Invoice) -> dict:
    """Return a reference to the invoice's PDF, rendered when the mail carrying it is sent."""
    return {"filename": invoice_pdf_filename(invoice), "mimetype": "application/pdf",
            "invoice": invoice.stripe_invoice_id}


def attachment_content(item: dict) -> tuple[str, str, bytes]:
    """Return (filename, mimetype, bytes) of a stored attachment; needs an app context."""
    if "base64" in item:
        return item["filename"], item["mimetype"], base64.b64decode(item["base64"])
    if "invoice" in item:
        invoice = db.session.scalar(
            db.select(Invoice).where(Invoice.stripe_invoice_id == item["invoice"]))
        if invoice is None:
            raise AttachmentUnavailable(f"invoice {item['invoice']} is not in the mirror")
        try:
            content = invoice_pdf(invoice_statement(invoice)).read()
        except PdfRenderError as exc:
            raise AttachmentUnavailable(f"invoice {item['invoice']}: {exc}") from exc
        return item["filename"], item["mimetype"], content
    raise AttachmentUnavailable(f"attachment {item.get('filename')!r} names no content")
