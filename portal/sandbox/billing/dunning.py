"""Retry schedule for failed automatic invoice payments (Smart-Retries-like, deterministic).

Stripe retries failed subscription payments on a schedule set in the Dashboard (Smart Retries
by default, or a custom schedule) and, once every retry has failed, moves the subscription to
the status chosen there: canceled, unpaid, or left past_due.  The sandbox fixes the schedule:

- the first attempt is made when the invoice is finalized;
- on failure the subscription goes past_due and retries follow 1, 3, 5 and 7 days after that
  first failed attempt (five attempts in all, the last one a week after the first);
- when the last retry fails, the final action applies: "cancel" (the default) cancels the
  subscription, "unpaid" marks it unpaid, "past_due" leaves it as it is.  The invoice stays
  open in every case, with next_payment_attempt null.

The first invoice of a subscription created incomplete is never retried: it either gets paid
within 23 hours or the subscription becomes incomplete_expired and the invoice is voided.
"""

from __future__ import annotations

from dataclasses import dataclass

from .periods import days

FINAL_ACTIONS = ("cancel", "unpaid", "past_due")
INCOMPLETE_EXPIRY_SECONDS = 23 * 3600


@dataclass(frozen=True)
class DunningPolicy:
    """Retry offsets in days from the first failed attempt, and the action after the last one."""

    retry_days: tuple[int, ...] = (1, 3, 5, 7)
    final_action: str = "cancel"

    def __post_init__(self) -> None:
        if self.final_action not in FINAL_ACTIONS:
            raise ValueError(f"final_action must be one of {FINAL_ACTIONS}")
        if list(self.retry_days) != sorted(set(self.retry_days)):
            raise ValueError("retry_days must be strictly increasing")

    @property
    def max_attempts(self) -> int:
        """Return how many attempts an invoice gets in all, the first one included."""
        return 1 + len(self.retry_days)

    def next_attempt_at(self, first_failed_at: int, attempt_count: int) -> int | None:
        """Return when to make the next attempt after attempt_count failed ones (None: give up)."""
        if attempt_count < 1 or attempt_count >= self.max_attempts:
            return None
        return first_failed_at + days(self.retry_days[attempt_count - 1])

    def subscription_status_after_exhaustion(self) -> str:
        """Return the subscription status once every attempt has failed."""
        return {"cancel": "canceled", "unpaid": "unpaid", "past_due": "past_due"}[self.final_action]


def incomplete_expires_at(subscription_created: int) -> int:
    """Return when an unpaid incomplete subscription becomes incomplete_expired."""
    return subscription_created + INCOMPLETE_EXPIRY_SECONDS
