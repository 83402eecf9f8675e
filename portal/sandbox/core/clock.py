"""The one source of "now" for every sandbox object.

Objects on a test clock read the clock's ``frozen_time`` (the ``test_helpers.test_clock``
object in the store); everything else reads wall time. Billing code asks ``now_for`` with
the customer or clock id it is working for, so the same engine runs for real time and for a
test clock's advance.
"""

from __future__ import annotations

import time

from .store import Store

TEST_CLOCK = "test_helpers.test_clock"


def wall_time() -> int:
    """Return the real current unix time in seconds."""
    return int(time.time())


def clock_of_customer(store: Store, customer_id: str | None) -> str | None:
    """Return the test clock id a customer is attached to, or None."""
    if not customer_id:
        return None
    customer = store.get(customer_id, "customer", include_deleted=True)
    return customer.get("test_clock") if customer else None


def now_for(store: Store, customer: str | None = None, clock: str | None = None) -> int:
    """Return "now" for a customer or test clock id: the clock's frozen time, else wall time."""
    clock_id = clock or clock_of_customer(store, customer)
    if clock_id:
        clock_obj = store.get(clock_id, TEST_CLOCK)
        if clock_obj and clock_obj.get("frozen_time") is not None:
            return int(clock_obj["frozen_time"])
    return wall_time()
