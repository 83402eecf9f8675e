"""The blueprint every hosted page registers its routes on."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("hosted", __name__)
