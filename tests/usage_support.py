"""Helpers the usage API tests share: keys, posting events, checking answers against OpenAPI."""
from __future__ import annotations

from datetime import UTC, datetime

from jsonschema import Draft202012Validator

from portal.services.api_keys import create_api_key


def new_key(account, name: str = "test key") -> str:
    """Create an API key for the account through the service; return its secret."""
    _key, secret = create_api_key(account, name, live=False, actor=None)
    return secret


def post_usage(client, secret: str | None, body):
    """POST a body to the usage API with the key as a bearer token."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return client.post("/api/v1/usage", json=body, headers=headers)


def event(identifier: str, quantity: int = 1, meter: str = "api_calls",
          at: datetime | None = None, **extra) -> dict:
    """Return an event as a client sends it (timestamp in Unix seconds)."""
    moment = at or datetime.now(UTC)
    return {"meter": meter, "quantity": quantity, "timestamp": int(moment.timestamp()),
            "identifier": identifier, **extra}


def assert_matches(client, schema_name: str, body) -> None:
    """Fail unless `body` is valid against a schema of the served OpenAPI document."""
    document = client.get("/api/v1/openapi.json").get_json()
    validator = Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}",
                                      "components": document["components"]})
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, [error.message for error in errors]
