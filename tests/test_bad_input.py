"""Whatever a client sends to any route, the answer is never a 500."""
from __future__ import annotations

import pytest

from portal.models import Role
from tests.helpers import csrf_from

GARBAGE = [
    {},
    {"lookup_key": "pro_year", "proration_date": "not a number"},
    {"lookup_key": "x" * 5000, "proration_date": "99999999999999999999"},
    {"lookup_key": "free_month", "feedback": "'; DROP TABLE users; --", "comment": "\x00\x01"},
    {"active": "maybe", "role": "superuser", "email": "@", "password": " "},
]


def fill(rule: str) -> list[str]:
    """Return URLs for a rule with odd values in its variables."""
    values = ["0", "999999", "pm_%2e%2e", "in_" + "z" * 300]
    if "<" not in rule:
        return [rule]
    return [rule.split("<")[0] + value + rule.split(">", 1)[1] for value in values]


@pytest.mark.parametrize("role", [None, Role.CUSTOMER, Role.ADMIN, Role.AUDITOR])
def test_no_route_answers_500(app, client, make_user, login, role):
    if role is not None:
        login(make_user(role))
    token = csrf_from(client, "/auth/login") if role is None else csrf_from(
        client, "/billing/" if role is Role.CUSTOMER else "/admin/")
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/static", "/_stripe")):
            continue
        for url in fill(rule.rule):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for data in GARBAGE:
                    for body in (dict(data, csrf_token=token), data):
                        response = client.open(url, method=method, data=body)
                        assert response.status_code < 500, (method, url, body,
                                                            response.status_code)
                # Bytes that are not UTF-8, and JSON that is not an object.
                response = client.open(url, method=method,
                                       data=b"email=%FF%FE&password=%C3%28&csrf_token=" +
                                       token.encode(),
                                       content_type="application/x-www-form-urlencoded")
                assert response.status_code < 500, (method, url, "bad utf-8")
                response = client.open(url, method=method, data=b"[1, 2]",
                                       content_type="application/json",
                                       headers={"X-CSRFToken": token})
                assert response.status_code < 500, (method, url, "json list")
