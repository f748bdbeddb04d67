"""The OpenAPI document is one a generator can use: stable operation ids, tags, servers and examples, and a
client generated from it by openapi-python-client upserts users and teams and adds memberships against the
live server."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import WS

OPERATIONS = {
    ("post", "/api/v1/users"): "upsertUser",
    ("get", "/api/v1/users"): "findUser",
    ("get", "/api/v1/users/{user_id}"): "getUser",
    ("patch", "/api/v1/users/{user_id}"): "patchUser",
    ("delete", "/api/v1/users/{user_id}/tags"): "removeUserTag",
    ("delete", "/api/v1/users/{user_id}/aliases"): "removeUserAlias",
    ("post", "/api/v1/users:bulk"): "bulkUpsertUsers",
    ("get", "/api/v1/me"): "getMe",
    ("post", "/api/v1/teams"): "upsertTeam",
    ("get", "/api/v1/teams"): "findTeam",
    ("get", "/api/v1/teams/{team_id}"): "getTeam",
    ("patch", "/api/v1/teams/{team_id}"): "patchTeam",
    ("delete", "/api/v1/teams/{team_id}"): "deleteTeam",
    ("post", "/api/v1/team-members"): "addTeamMember",
    ("post", "/api/v1/team-members:delete"): "removeTeamMember",
    ("delete", "/api/v1/teams/{team_id}/members/{user_id}"): "removeTeamMemberByPath",
    ("delete", "/api/v1/team-members/{period_id}"): "eraseTeamMemberPeriod",
    ("get", "/api/v1/teams/{team_id}/members"): "listTeamMembers",
    ("get", "/api/v1/teams/{team_id}/timeline"): "getTeamTimeline",
    ("get", "/api/v1/users/{user_id}/timeline"): "getUserTimeline",
    ("get", "/api/v1/custom-variables/{target_id}"): "getCustomVariables",
    ("put", "/api/v1/custom-variables/{target_id}"): "setCustomVariables",
    ("post", "/api/v1/custom-variables/{target_id}"): "setCustomVariablesByPost",
    ("get", "/api/v1/changes"): "listChanges",
    ("post", "/api/v1/webhooks"): "createWebhook",
    ("get", "/api/v1/webhooks"): "listWebhooks",
    ("post", "/api/v1/webhooks/{webhook_id}:rotate-secret"): "rotateWebhookSecret",
    ("get", "/api/v1/webhooks/{webhook_id}"): "getWebhook",
    ("patch", "/api/v1/webhooks/{webhook_id}"): "patchWebhook",
    ("delete", "/api/v1/webhooks/{webhook_id}"): "deleteWebhook",
    ("get", "/api/v1/webhooks/{webhook_id}/attempts"): "listWebhookAttempts",
    ("post", "/api/v1/webhooks/{webhook_id}/test"): "sendWebhookTest",
    ("post", "/api/v1/webhooks/{webhook_id}/resend"): "resendWebhookEvent",
    ("post", "/api/v1/webhooks/{webhook_id}/replay"): "replayWebhook",
    ("get", "/api/v1/exports/users.{fmt}"): "exportUsers",
    ("get", "/api/v1/exports/teams.{fmt}"): "exportTeams",
    ("get", "/api/v1/exports/memberships.{fmt}"): "exportMemberships",
    ("get", "/api/v1/exports/custom-variables.{fmt}"): "exportCustomVariables",
    ("get", "/api/v1/exports/audit-events.{fmt}"): "exportAuditEvents",
    ("post", "/api/v1/imports/{kind}"): "importFile",
    ("get", "/healthz"): "getHealth",
}


def test_operation_ids_tags_servers_and_examples(client: httpx.Client) -> None:
    """Every operation has its stable id (the drop-in /app/Api paths are not in the document), a tag, and every
    JSON request body an example (a file's body is binary); the document names its server."""
    doc = client.get("/api/v1/openapi.json").json()
    found = {(method, path): op["operationId"] for path, ops in doc["paths"].items() for method, op in ops.items()}
    assert found == OPERATIONS
    declared = {t["name"] for t in doc["tags"]}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert len(op["tags"]) == 1 and op["tags"][0] in declared, (method, path)
            if "requestBody" in op:
                content = op["requestBody"]["content"]
                if "application/json" in content:
                    assert content["application/json"]["example"], (method, path)
                else:
                    assert content == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    assert doc["servers"] == [{"url": "/", "description": "this PayRoster"}]


def generate(doc: dict[str, Any], into: Path, package: str) -> Any:
    """Generate a client package from ``doc`` with openapi-python-client and import it."""
    (into / "openapi.json").write_text(httpx.Response(200, json=doc).text)
    (into / "generator.yaml").write_text("post_hooks: []\n")  # no formatter run over the generated code
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(into / "openapi.json"),
            "--output-path",
            str(into / package),
            "--meta",
            "none",
            "--config",
            str(into / "generator.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout, made.stdout  # every operation and schema was understood
    sys.path.insert(0, str(into))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(into))


def test_a_generated_client_upserts_and_adds_a_membership(
    client: httpx.Client, base_url: str, ws: WS, tmp_path: Path, backend: str
) -> None:
    """The generated client creates a user and a team, then adds the membership (201, then 200 with
    ``created: false``), against the live server."""
    package = f"payroster_generated_{backend}"
    generate(client.get("/api/v1/openapi.json").json(), tmp_path, package)
    api = importlib.import_module(f"{package}.api")
    models = importlib.import_module(f"{package}.models")
    importlib.import_module(f"{package}.api.users.upsert_user")
    importlib.import_module(f"{package}.api.teams.upsert_team")
    importlib.import_module(f"{package}.api.team_members.add_team_member")
    importlib.import_module(f"{package}.api.users.find_user")
    generated = importlib.import_module(package)
    try:
        with generated.AuthenticatedClient(base_url=base_url, token=ws.key) as c:
            role = models.UserUpsertRole.PARTICIPANT
            body = models.UserUpsert(email_address="Rep@Example.com", role=role, first_name="Ada", tags="AE|West")
            made = api.users.upsert_user.sync_detailed(client=c, body=body)
            assert made.status_code == 201, made.content
            user = made.parsed
            assert user.email_address == "Rep@Example.com" and sorted(user.tags) == ["AE", "West"]
            more = models.UserUpsert(email_address="rep@example.com", tags=["EMEA"])
            again = api.users.upsert_user.sync_detailed(client=c, body=more)
            assert again.status_code == 200 and again.parsed.id == user.id
            assert sorted(again.parsed.tags) == ["AE", "EMEA", "West"]

            team = api.teams.upsert_team.sync_detailed(client=c, body=models.TeamUpsert(name="West"))
            assert team.status_code == 201, team.content
            member = models.MemberIn(system_user_id=user.id, team_id=team.parsed.id)
            added = api.team_members.add_team_member.sync_detailed(client=c, body=member)
            assert added.status_code == 201 and added.parsed.created is True
            repeated = api.team_members.add_team_member.sync_detailed(client=c, body=member)
            assert repeated.status_code == 200 and repeated.parsed.created is False

            found = api.users.find_user.sync_detailed(client=c, email_address="REP@example.com")
            assert found.status_code == 200 and found.parsed.id == user.id
            missing = api.users.find_user.sync_detailed(client=c, email_address="nobody@example.com")
            assert missing.status_code == 404 and missing.parsed.error.code == "notFound"
    finally:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]
