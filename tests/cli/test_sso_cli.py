"""``payroster sso add | list | remove``: the CLI door of a workspace's identity providers."""

from __future__ import annotations

from tests.conftest import create_workspace
from tests.procs import run_cli

SECRET = "cli-secret-3b1f0c9e"


def test_add_list_remove_a_provider_without_ever_printing_its_secret(env: dict[str, str]) -> None:
    slug = create_workspace(env)["workspaceSlug"]
    added = run_cli(
        env, "sso", "add", "--workspace", slug, "--name", "Okta", "--issuer", "https://acme.okta.com/",
        "--client-id", "0oa123", "--client-secret", SECRET, "--domain", "Acme.example", "--domain", "acme.example",
        "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    provider = added.json()
    assert provider["issuer"] == "https://acme.okta.com" and provider["domains"] == ["acme.example"]
    assert provider["scopes"] == "openid email profile"
    listed = run_cli(env, "sso", "list", "--workspace", slug, "--json")
    assert listed.code == 0 and listed.json() == [provider]
    plain = run_cli(env, "sso", "list", "--workspace", slug)
    assert "Okta" in plain.out
    for run in (added, listed, plain):
        assert SECRET not in run.out + run.err
    removed = run_cli(env, "sso", "remove", "--workspace", slug, "--id", provider["id"])
    assert removed.code == 0, removed.err
    assert run_cli(env, "sso", "list", "--workspace", slug, "--json").json() == []
    again = run_cli(env, "sso", "remove", "--workspace", slug, "--id", provider["id"])
    assert again.code == 1 and "not found" in again.err


def test_an_http_issuer_that_is_not_loopback_is_refused(env: dict[str, str]) -> None:
    slug = create_workspace(env)["workspaceSlug"]
    refused = run_cli(
        env, "sso", "add", "--workspace", slug, "--name", "X", "--issuer", "http://idp.example",
        "--client-id", "c", "--client-secret", SECRET,
    )  # fmt: skip
    assert refused.code == 1 and "https" in refused.err and SECRET not in refused.err
