"""``payroster webhook create|list|disable|rotate-secret`` against a real database."""

from __future__ import annotations

from tests.conftest import create_workspace
from tests.procs import run_cli


def test_webhook_commands(env: dict[str, str]) -> None:
    env = env | {"PAYROSTER_WEBHOOK_ALLOW_HOSTS": "127.0.0.3"}
    slug = create_workspace(env)["workspaceSlug"]
    made = run_cli(env, "webhook", "create", "--workspace", slug, "--url", "http://127.0.0.3:9/hook",
                   "--event-type", "user.*", "--json")  # fmt: skip
    assert made.code == 0, made.err
    hook = made.json()
    assert hook["secret"].startswith("whsec_") and hook["eventTypes"] == ["user.*"]
    refused = run_cli(env, "webhook", "create", "--workspace", slug, "--url", "http://10.0.0.1/hook")
    assert refused.code == 1 and "https is required" in refused.err
    unknown = run_cli(
        env, "webhook", "create", "--workspace", slug, "--url", "https://127.0.0.3/", "--event-type", "x.y"
    )
    assert unknown.code == 1 and "unknown event type" in unknown.err
    listed = run_cli(env, "webhook", "list", "--workspace", slug, "--json")
    assert [e["id"] for e in listed.json()] == [hook["id"]] and "secret" not in listed.json()[0]
    rotated = run_cli(env, "webhook", "rotate-secret", "--workspace", slug, "--id", hook["id"], "--json")
    assert rotated.code == 0 and rotated.json()["secret"] not in (None, hook["secret"])
    assert run_cli(env, "webhook", "disable", "--workspace", slug, "--id", hook["id"]).code == 0
    shown = run_cli(env, "webhook", "list", "--workspace", slug)
    assert "disabled (disabled by an administrator)" in shown.out
    other = run_cli(env, "webhook", "disable", "--workspace", slug, "--id", "00000000-0000-0000-0000-000000000000")
    assert other.code == 1 and "webhook not found" in other.err
