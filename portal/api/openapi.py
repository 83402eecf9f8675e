"""The OpenAPI 3.1 description of the usage API (tests validate real answers against it)."""
from __future__ import annotations

from portal.services.usage import IDENTIFIER_MAX, MAX_BATCH, QUANTITY_MAX, meter_aggregations

PROJECTION_METHOD = ("linear on the time elapsed: used / elapsed * period length, rounded "
                     "down, for sum and count meters; last meters project their latest value")
ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}
ERROR_RESPONSE = {"description": "Refused; see the error shape.",
                  "content": {"application/json": {"schema": ERROR_SCHEMA}}}
RATE_LIMITED = {
    "description": "Too many requests with this key; retry after Retry-After seconds.",
    "headers": {"Retry-After": {"schema": {"type": "integer"},
                                "description": "Seconds until the key may send again."}},
    "content": {"application/json": {"schema": ERROR_SCHEMA}},
}


def _schemas() -> dict:
    problem = {
        "type": "object", "required": ["field", "code", "message"],
        "additionalProperties": False,
        "properties": {
            "field": {"type": "string", "description": "The event field at fault."},
            "code": {"type": "string", "enum": ["required", "invalid_type", "invalid_format",
                                                "unknown_meter", "unknown_field", "out_of_range",
                                                "too_old", "in_future", "too_large"]},
            "message": {"type": "string"},
        },
    }
    item = {
        "type": "object", "required": ["index", "identifier", "status"],
        "additionalProperties": False,
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "identifier": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"],
                       "description": "duplicate: the identifier was already stored for the "
                                      "account (or appears earlier in the batch); nothing "
                                      "changed."},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldProblem"}},
        },
    }
    return {
        "UsageEvent": {
            "type": "object", "required": ["meter", "quantity", "timestamp", "identifier"],
            "additionalProperties": False,
            "properties": {
                "meter": {"type": "string", "enum": sorted(meter_aggregations())},
                "quantity": {"type": "integer", "minimum": 0, "maximum": QUANTITY_MAX},
                "timestamp": {
                    "oneOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
                    "description": "Unix seconds or RFC 3339 with a zone; at most 35 days "
                                   "old and 5 minutes ahead (Stripe's meter limits)."},
                "identifier": {"type": "string", "minLength": 1, "maxLength": IDENTIFIER_MAX,
                               "description": "Unique per account: a replay is a duplicate."},
                "metadata": {"type": "object"},
            },
        },
        "UsageBatch": {
            "type": "object", "required": ["events"], "additionalProperties": False,
            "properties": {"events": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                                      "items": {"$ref": "#/components/schemas/UsageEvent"}}},
        },
        "FieldProblem": problem,
        "ItemResult": item,
        "IngestResult": {
            "type": "object", "required": ["accepted", "duplicates", "rejected", "items"],
            "additionalProperties": False,
            "properties": {
                "accepted": {"type": "integer", "minimum": 0},
                "duplicates": {"type": "integer", "minimum": 0},
                "rejected": {"type": "integer", "minimum": 0},
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/ItemResult"}},
            },
        },
        "MeterUsage": {
            "type": "object", "additionalProperties": False,
            "required": ["meter", "name", "unit", "aggregation", "used", "included", "overage",
                         "projected"],
            "properties": {
                "meter": {"type": "string"}, "name": {"type": "string"},
                "unit": {"type": "string"},
                "aggregation": {"type": "string", "enum": ["sum", "count", "last"]},
                "used": {"type": "integer", "minimum": 0},
                "included": {"type": "integer", "minimum": 0},
                "overage": {"type": "integer", "minimum": 0},
                "projected": {"type": "integer", "minimum": 0},
            },
        },
        "UsageSummary": {
            "type": "object", "additionalProperties": False,
            "required": ["period", "plan", "projection_method", "meters"],
            "properties": {
                "period": {
                    "type": "object", "additionalProperties": False,
                    "required": ["start", "end", "source"],
                    "properties": {
                        "start": {"type": "string", "format": "date-time"},
                        "end": {"type": "string", "format": "date-time"},
                        "source": {"type": "string",
                                   "enum": ["subscription", "calendar_month"]},
                    },
                },
                "plan": {"type": ["string", "null"]},
                "projection_method": {"type": "string"},
                "meters": {"type": "array", "items": {"$ref": "#/components/schemas/MeterUsage"}},
            },
        },
        "Error": {
            "type": "object", "required": ["error"], "additionalProperties": False,
            "properties": {"error": {
                "type": "object", "required": ["status", "code", "message"],
                "additionalProperties": False,
                "properties": {
                    "status": {"type": "integer"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "array",
                                "items": {"$ref": "#/components/schemas/ItemResult"}},
                },
            }},
        },
    }


def openapi_document() -> dict:
    """Return the OpenAPI 3.1 document of /api/v1."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Billing portal usage API", "version": "1",
                 "description": "Send usage events and read the current period's usage. "
                                "Every failure answers with the Error shape."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/usage": {"post": {
                "operationId": "ingestUsage",
                "summary": "Store one usage event or a batch of up to 1,000",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "oneOf": [{"$ref": "#/components/schemas/UsageEvent"},
                              {"$ref": "#/components/schemas/UsageBatch"}]}}}},
                "responses": {
                    "200": {"description": "Each item accepted, duplicate or rejected; good "
                                           "items are stored even when others are rejected.",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/IngestResult"}}}},
                    "400": ERROR_RESPONSE, "401": ERROR_RESPONSE,
                    "413": {**ERROR_RESPONSE,
                            "description": "The body is over the portal's request size "
                                           "(MAX_CONTENT_LENGTH, 1 MiB by default)."},
                    "422": {**ERROR_RESPONSE,
                            "description": "Every item was rejected; details lists why."},
                    "402": {**ERROR_RESPONSE,
                            "description": "usage_limit_reached: the account turned its hard "
                                           "limit on, and its included usage and prepaid "
                                           "credits are used up; nothing in the request was "
                                           "stored."},
                    "429": RATE_LIMITED,
                },
            }},
            "/usage/summary": {"get": {
                "operationId": "usageSummary",
                "summary": "The current billing period's usage per meter",
                "description": "The period is the live subscription's current period, or the "
                               "UTC calendar month without one; usage is counted by the hour, "
                               "so the hour holding the period start counts in the period. "
                               f"Projection: {PROJECTION_METHOD}.",
                "responses": {
                    "200": {"description": "Usage per meter.",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/UsageSummary"}}}},
                    "401": ERROR_RESPONSE, "429": RATE_LIMITED,
                },
            }},
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An account API key (bp_live_... or "
                                                          "bp_test_...) from the API keys page."}},
            "schemas": _schemas(),
        },
    }
