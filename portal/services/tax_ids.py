"""Tax id types the portal collects, as Stripe names them, with their format and label."""
from __future__ import annotations

import re

# type: (label, country or None for several, value format after removing spaces)
TAX_ID_TYPES: dict[str, tuple[str, str | None, str]] = {
    "eu_vat": ("EU VAT", None, r"(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT"
                               r"|NL|PL|PT|RO|SE|SI|SK|XI)[0-9A-Z+*]{2,13}"),
    "gb_vat": ("GB VAT", "GB", r"GB\d{9}(\d{3})?"),
    "us_ein": ("US EIN", "US", r"\d{2}-?\d{7}"),
    "au_abn": ("Australian ABN", "AU", r"\d{11}"),
    "ca_bn": ("Canadian BN", "CA", r"\d{9}"),
    "ch_vat": ("Swiss VAT", "CH", r"CHE-?\d{3}\.?\d{3}\.?\d{3} ?(MWST|TVA|IVA)"),
    "no_vat": ("Norwegian VAT", "NO", r"\d{9}MVA"),
    "in_gst": ("Indian GST", "IN", r"\d{2}[A-Z]{5}\d{4}[A-Z]\d[A-Z\d]{2}"),
    "jp_cn": ("Japanese corporate number", "JP", r"\d{13}"),
    "nz_gst": ("New Zealand GST", "NZ", r"\d{8,9}"),
    "sg_gst": ("Singapore GST", "SG", r"[A-Z\d]{10}"),
    "za_vat": ("South African VAT", "ZA", r"4\d{9}"),
    "br_cnpj": ("Brazilian CNPJ", "BR", r"\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}"),
    "mx_rfc": ("Mexican RFC", "MX", r"[A-Z&Ñ]{3,4}\d{6}[A-Z\d]{3}"),
}


def tax_id_label(kind: str) -> str:
    """Return a person's name for a Stripe tax id type ('eu_vat' -> 'EU VAT')."""
    return TAX_ID_TYPES.get(kind, (kind.replace("_", " ").upper(),))[0]


def normalise_tax_id(kind: str, value: str) -> str | None:
    """Return the value in Stripe's expected form, or None when its format is wrong."""
    if kind not in TAX_ID_TYPES:
        return None
    cleaned = value.strip().upper().replace(" ", "")
    if kind == "ch_vat":
        cleaned = value.strip().upper()
    return cleaned if re.fullmatch(TAX_ID_TYPES[kind][2], cleaned) else None
