"""What the OpenAPI document adds for generators and readers: a tag per resource, an example of each body."""

from __future__ import annotations

from typing import Any

from payroster.api import schemas

TAGS = [
    {"name": name, "description": text}
    for name, text in (
        ("users", "create, read, change users; their tags and aliases; bulk upserts"),
        ("teams", "create, read, rename and delete teams"),
        ("team members", "add and remove team memberships"),
        ("custom variables", "effective-dated variables of a user or team"),
        ("exports", "spreadsheets (CSV, XLSX) of users, teams, memberships, variables and audit events"),
        ("imports", "spreadsheet files (CSV, TSV, XLSX) of users, teams, memberships, variables, or all four"),
        ("changes", "every committed change of the workspace, in order, after a cursor"),
        ("webhooks", "endpoints the workspace's changes are POSTed to, signed (Standard Webhooks)"),
        ("me", "the key's owner and the workspace's OData and SCIM addresses"),
        ("health", "the load balancer's probe"),
    )
]


def add_examples(doc: dict[str, Any]) -> None:
    """Each request body that refers to a schema of ``schemas.REQUEST_EXAMPLES`` shows its example."""
    for operations in doc["paths"].values():
        for operation in operations.values():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if media is None:
                continue
            schema = media["schema"]
            ref = schema.get("$ref") or schema.get("items", {}).get("$ref", "")
            example = schemas.REQUEST_EXAMPLES.get(ref.rsplit("/", 1)[-1])
            if example is not None:
                media["example"] = [example] if "items" in schema else example
