"""Invoice PDFs rendered by the portal with xhtml2pdf, cached per version for final invoices.

The renderer reads nothing but the portal's own template and static folders: a link callback
maps only those, and xhtml2pdf's resource policy refuses the network and every other path,
so markup that reaches a PDF (a customer's name, say) can never make the server fetch a URL.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app, has_request_context, render_template
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from xhtml2pdf import default as pisa_defaults
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

# Where a refused resource points instead: an empty data URI, which is never fetched.
REFUSED = "data:,"
PDF_TEMPLATE = "pdf/invoice.html"
PAGE_OBJECT = re.compile(rb"/Type /Page\b")
# Table rows that fit the first page (below the parties) and each later page, roughly.
FIRST_PAGE_LINES = 35
LINES_PER_PAGE = 50
PAGE_SIZES = {"A4": "a4", "LETTER": "letter"}
FONT_FAMILY = "dejavu"
FONT_FILES = {"DejaVuSans": "DejaVuSans.ttf", "DejaVuSans-Bold": "DejaVuSans-Bold.ttf"}

_fonts_lock = threading.Lock()
_fonts_ready = False


class PdfRenderError(Exception):
    """Raised when xhtml2pdf reports errors for a document."""


@dataclass
class PdfDocument:
    """A rendered (or cached) PDF with what the response needs."""

    content: bytes | None
    etag: str
    filename: str
    path: Path | None = None

    def read(self) -> bytes:
        """Return the PDF bytes, from memory or the cache file."""
        if self.content is None and self.path is not None:
            self.content = self.path.read_bytes()
        return self.content or b""


def _folders() -> tuple[Path, Path]:
    """Return the template and static folders, the only places a PDF may read from."""
    app = current_app
    return Path(app.root_path, app.template_folder).resolve(), Path(app.static_folder).resolve()


def register_fonts(static_folder: Path) -> None:
    """Register the embedded DejaVu fonts with ReportLab once per process.

    Loading a TrueType font per render costs several hundred milliseconds; registered once,
    every PDF embeds the subset it uses.
    """
    global _fonts_ready
    if _fonts_ready:
        return
    with _fonts_lock:
        if _fonts_ready:
            return
        for name, filename in FONT_FILES.items():
            pdfmetrics.registerFont(TTFont(name, str(static_folder / "fonts/dejavu" / filename)))
        for bold in (0, 1):
            for italic in (0, 1):
                addMapping("DejaVuSans", bold, italic,
                           "DejaVuSans-Bold" if bold else "DejaVuSans")
        pisa_defaults.DEFAULT_FONT[FONT_FAMILY] = "DejaVuSans"
        _fonts_ready = True


def link_callback(uri: str, _rel: str | None = None) -> str:
    """Map a document's link to a file in the template or static folder; refuse anything else."""
    templates, static = _folders()
    parts = urlsplit(uri or "")
    if parts.scheme not in ("", "file") or parts.netloc:
        return REFUSED
    path = unquote(parts.path)
    static_url = current_app.static_url_path.rstrip("/") + "/"
    if path.startswith(static_url):
        candidate = static / path[len(static_url):]
    elif Path(path).is_absolute():
        candidate = Path(path)
    else:
        candidate = static / path
    resolved = candidate.resolve()
    for root in (templates, static):
        if resolved.is_relative_to(root) and resolved.is_file():
            return str(resolved)
    return REFUSED


def resource_policy() -> ResourceAccessPolicy:
    """Return xhtml2pdf's policy: no network, local reads only inside our two folders."""
    templates, static = _folders()
    return ResourceAccessPolicy.server(base_dir=static, extra_roots=(templates,),
                                       allow_remote=False)


def html_to_pdf(html: str) -> bytes:
    """Render HTML to PDF bytes with the portal's fonts, callback and policy."""
    register_fonts(_folders()[1])
    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out, link_callback=link_callback,
                            resource_policy=resource_policy(), encoding="utf-8")
    if result.err:
        raise PdfRenderError(f"xhtml2pdf reported {result.err} error(s)")
    return out.getvalue()


def page_size() -> str:
    """Return the configured paper size for xhtml2pdf ('a4' or 'letter')."""
    return PAGE_SIZES.get(str(current_app.config.get("PDF_PAGE_SIZE", "A4")).upper(), "a4")


_template_digests: dict[str, str] = {}


def template_digest() -> str:
    """Return a digest of the PDF template and stylesheet, so a new design is a new version."""
    templates, static = _folders()
    key = str(templates)
    if key not in _template_digests:
        digest = hashlib.sha256()
        for path in (templates / PDF_TEMPLATE, static / "css/print/invoice.css"):
            digest.update(path.read_bytes())
        _template_digests[key] = digest.hexdigest()
    return _template_digests[key]


def statement_version(fingerprint: dict) -> str:
    """Return the version tag of what a PDF shows (its ETag)."""
    payload = json.dumps({**fingerprint, "_page": page_size(), "_design": template_digest()},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def cache_folder() -> Path:
    """Return the folder finalized invoices' PDFs are stored in."""
    configured = current_app.config.get("PDF_CACHE_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "pdf-cache"


def page_count(pdf: bytes) -> int:
    """Return how many pages a PDF ReportLab wrote has (its /Type /Page objects)."""
    return len(PAGE_OBJECT.findall(pdf))


def estimated_pages(lines: int) -> int:
    """Return a first guess of an invoice's page count from its number of lines."""
    return 1 + max(0, lines - FIRST_PAGE_LINES + LINES_PER_PAGE - 1) // LINES_PER_PAGE


def render_invoice_pdf(statement) -> bytes:
    """Render an invoice statement to PDF bytes (never cached).

    The footer's "n / total" is printed from a guessed total and checked against the result,
    rendering again only when the guess was wrong: xhtml2pdf's own page count would lay the
    whole document out at least twice every time.
    """
    if not has_request_context():
        # An RQ worker (a receipt for a webhook) has no request: url_for needs one for paths.
        with current_app.test_request_context("/"):
            return render_invoice_pdf(statement)
    total = estimated_pages(len(statement.invoice.lines or []))
    for _attempt in range(3):
        pdf = html_to_pdf(render_template(PDF_TEMPLATE, statement=statement,
                                          page_size=page_size(), page_total=total))
        if page_count(pdf) == total:
            return pdf
        total = page_count(pdf)
    # The count kept moving (a footer that changes the layout): let xhtml2pdf count.
    return html_to_pdf(render_template(PDF_TEMPLATE, statement=statement,
                                       page_size=page_size(), page_total=None))


def invoice_pdf_filename(invoice) -> str:
    """Return the file name an invoice's PDF is downloaded and attached under."""
    return f"invoice-{invoice.number or invoice.stripe_invoice_id}.pdf"


def invoice_pdf(statement) -> PdfDocument:
    """Return the invoice's PDF: from the cache when final and unchanged, else rendered."""
    invoice = statement.invoice
    etag = statement_version(statement.fingerprint())
    filename = invoice_pdf_filename(invoice)
    if invoice.status == "draft":
        return PdfDocument(render_invoice_pdf(statement), etag, filename)
    path = cache_folder() / f"{invoice.stripe_invoice_id}-{etag}.pdf"
    if path.is_file():
        return PdfDocument(None, etag, filename, path)
    content = render_invoice_pdf(statement)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so a concurrent reader never sees half a file.
    partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    partial.write_bytes(content)
    os.replace(partial, path)
    return PdfDocument(content, etag, filename, path)
