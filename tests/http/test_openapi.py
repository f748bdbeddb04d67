"""The OpenAPI document describes the real request bodies, responses and errors."""

from __future__ import annotations

import httpx

# Actions on a resource that take no body: the operation and its path say everything.
WITHOUT_BODY = {"rotateWebhookSecret", "sendWebhookTest"}
# Operations whose body is a file, not JSON: the spreadsheet import.
FILE_BODY = {"importFile"}


def test_openapi_served_and_complete(client: httpx.Client) -> None:
    """Every write operation names its request schema, and every operation documents the error body."""
    doc = client.get("/api/v1/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("UserUpsert", "UserPatch", "TeamUpsert", "TeamPatch", "MemberIn", "VariableEntry", "ErrorBody"):
        assert name in schemas, name
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if op.get("operationId") in FILE_BODY:
                binary = op["requestBody"]["content"]["application/octet-stream"]["schema"]
                assert binary == {"type": "string", "format": "binary"}, (path, method)
            elif method in ("post", "put", "patch") and path != "/healthz" and op["operationId"] not in WITHOUT_BODY:
                body = op["requestBody"]["content"]["application/json"]["schema"]
                ref = body.get("$ref") or body["items"]["$ref"]
                assert ref.rsplit("/", 1)[1] in schemas, (path, method)
            if path != "/healthz":
                assert op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
                assert "422" in op["responses"], (path, method)


def test_upsert_schema_matches_wire_fields(client: httpx.Client) -> None:
    """The upsert fields the OpenAPI document lists are exactly those README.md documents ("JSON API"), with unknown
    fields forbidden."""
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["UserUpsert"]
    assert set(schema["properties"]) == {
        "emailAddress",
        "role",
        "firstName",
        "lastName",
        "directManagerId",
        "tags",
        "aliases",
        "effectiveDate",  # the date a directManagerId change holds from (README.md, "Dates and timelines")
    }
    assert schema["required"] == ["emailAddress"]
    assert schema["additionalProperties"] is False


def test_compat_paths_hidden_but_served(client: httpx.Client) -> None:
    """Drop-in /app/Api paths work without cluttering the documented API."""
    doc = client.get("/api/v1/openapi.json").json()
    assert not [p for p in doc["paths"] if p.startswith("/app/")]
    assert client.post("/app/Api/SetUser", content=b"{}").status_code == 401
