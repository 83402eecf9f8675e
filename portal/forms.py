"""The base of every portal form: Flask-WTF with CSRF, reading only well-formed input."""
from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm
from werkzeug.datastructures import ImmutableMultiDict


class PortalForm(FlaskForm):
    """A CSRF-protected form that treats a JSON body other than an object as empty."""

    class Meta:
        def wrap_formdata(self, form, formdata):
            """Read the submitted fields; Flask-WTF would fail on a JSON list or number."""
            if request.is_json and request.method in ("POST", "PUT", "PATCH", "DELETE"):
                payload = request.get_json(silent=True)
                if not isinstance(payload, dict):
                    return ImmutableMultiDict()
            return super().wrap_formdata(form, formdata)
