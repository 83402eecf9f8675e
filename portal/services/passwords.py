"""Password rules after OWASP ASVS 2.1: length, no common or guessable passwords, no
composition rules; and names without control or direction-changing characters."""
from __future__ import annotations

import unicodedata
from functools import lru_cache

MIN_LENGTH = 12  # ASVS 2.1.1
MAX_LENGTH = 128  # ASVS 2.1.2 allows at least 64
# zxcvbn's score 3: "safely unguessable", about 10^8 guesses or more.
MIN_STRENGTH = 3
# Direction overrides and isolates: they make a name display differently from what it is.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                          "\u2066\u2067\u2068\u2069")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """Return the 30,000 most common passwords, as zxcvbn ships them (no network)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, related: tuple[str, ...] = ()) -> str | None:
    """Return why a new password is refused, or None when it is acceptable.

    `related` holds words an attacker knows (email, account name): a password built from
    them is easy to guess.
    """
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"Use between {MIN_LENGTH} and {MAX_LENGTH} characters."
    if password.lower() in common_passwords():
        return "This is one of the most common passwords: choose another."
    from zxcvbn import zxcvbn

    words = [part for value in related for part in value.replace("@", " ").split() if part]
    result = zxcvbn(password, user_inputs=words)
    if result["score"] < MIN_STRENGTH:
        hint = (result.get("feedback") or {}).get("warning") or "it is easy to guess"
        return (f"This password is too easy to guess ({hint.rstrip('.').lower()}). "
                "A few unrelated words make a strong one.")
    return None


def name_problem(name: str) -> str | None:
    """Return why a name is refused (control or bidi-override characters), or None."""
    for char in name:
        if char in BIDI_CONTROLS:
            return "Names cannot contain characters that change the text direction."
        if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn"):
            return "Names cannot contain control or unassigned characters."
    return None
