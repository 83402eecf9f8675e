"""Several servers on one SQLite file, hammered concurrently, lose no updates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import stripe


def test_concurrent_refunds_never_over_refund(start_sandbox):
    first = start_sandbox()
    second = start_sandbox(db=first.db)
    clients = [first.client(), second.client()]
    pi = clients[0].v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    # Leave 10 units to refund, then race 20 refunds of 1 unit through two servers.
    clients[0].v1.refunds.create(params={"charge": pi.latest_charge, "amount": 990})

    def refund(i: int) -> str:
        client = clients[i % 2]
        try:
            client.v1.refunds.create(params={"charge": pi.latest_charge, "amount": 1})
            return "ok"
        except stripe.InvalidRequestError as err:
            assert err.code in ("amount_too_large", "charge_already_refunded")
            return "refused"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(refund, range(20)))
    assert outcomes.count("ok") == 10
    charge = clients[1].v1.charges.retrieve(pi.latest_charge)
    assert charge.amount_refunded == 1000 and charge.refunded is True
    assert len(clients[0].v1.refunds.list(params={"limit": 100}).data) == 11


def test_concurrent_creates_and_updates(start_sandbox):
    first = start_sandbox()
    second = start_sandbox(db=first.db)
    clients = [first.client(), second.client()]
    customer = clients[0].v1.customers.create()

    def work(i: int) -> None:
        client = clients[i % 2]
        client.v1.customers.create(params={"email": f"c{i}@example.com"})
        client.v1.customers.update(customer.id, params={"metadata": {f"k{i}": str(i)}})

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(work, range(20)))
    assert len(clients[1].v1.customers.list(params={"limit": 100}).data) == 21
    merged = clients[1].v1.customers.retrieve(customer.id).metadata.to_dict()
    assert merged == {f"k{i}": str(i) for i in range(20)}
    updates = clients[0].v1.events.list(params={"type": "customer.updated", "limit": 100})
    assert len(updates.data) == 20
