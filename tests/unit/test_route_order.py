"""The application tries the machine doors' routes first (create_app); that is only safe while no page or
other door answers under their path prefixes, which this checks over every route the application has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.routing import Match

from payroster.app import create_app
from payroster.config import Settings

DOORS = {"odata": ("/odata/",), "scim": ("/scim/v2/",), "api": ("/api/v1/", "/app/Api/")}


def tried(app: FastAPI) -> Iterator[tuple[int, Any]]:
    """``(position, route)`` of every route, in the order the application tries them (an included router
    holds its routes at its own position)."""
    for i, route in enumerate(app.router.routes):
        inner = getattr(route, "original_router", None)
        for each in inner.routes if inner is not None else [route]:
            yield i, each


def module_of(route: Any) -> str:
    endpoint = getattr(route, "endpoint", None)
    return str(endpoint.__module__) if endpoint is not None else ""


def test_each_path_prefix_belongs_to_one_door_and_doors_come_first(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'routes.db'}"))
    owners: dict[str, set[str]] = {}
    for _, route in tried(app):
        path, module = getattr(route, "path", ""), module_of(route)
        for door, prefixes in DOORS.items():
            if path.startswith(prefixes):
                owners.setdefault(door, set()).add(module)
        if module.startswith("payroster.web"):
            assert not path.startswith(sum(DOORS.values(), ())), f"page route {path} under a door's prefix"
    assert owners["odata"] == {"payroster.odata.routes"}
    assert owners["scim"] == {"payroster.scim.routes"}
    # The API door's routes, and FastAPI's own route for the OpenAPI document under its prefix.
    api = {
        "payroster.api.routes_users",
        "payroster.api.routes_teams",
        "payroster.api.routes_changes",
        "payroster.api.routes_webhooks",
        "payroster.api.routes_exports",
        "payroster.api.routes_imports",
        "payroster.api.routes_timelines",
    }
    assert owners["api"] == api | {"fastapi.applications"}
    machine = ("payroster.odata", "payroster.scim", "payroster.api")
    doors = [i for i, r in tried(app) if module_of(r).startswith(machine)]
    pages = [i for i, r in tried(app) if module_of(r).startswith("payroster.web")]
    assert max(doors) < min(pages), "the machine doors' routes are tried before the pages'"


def test_requests_reach_their_own_door_first(tmp_path: Path) -> None:
    """The first route that fully matches each door's request is that door's (nothing in front shadows it)."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'routes.db'}"))
    wanted = {
        ("GET", "/odata/acme/Users"): "payroster.odata.routes",
        ("GET", "/scim/v2/acme/Users"): "payroster.scim.routes",
        ("GET", "/api/v1/me"): "payroster.api.routes_users",
        ("POST", "/api/v1/users"): "payroster.api.routes_users",
        ("GET", "/api/v1/changes"): "payroster.api.routes_changes",
        ("POST", "/api/v1/webhooks/x:rotate-secret"): "payroster.api.routes_webhooks",
        ("GET", "/users"): "payroster.web.routes_users",
    }
    for (method, path), module in wanted.items():
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}
        first = next(route for _, route in tried(app) if route.matches(scope)[0] == Match.FULL)
        assert module_of(first) == module, (method, path, module_of(first))


def test_the_health_probe_is_tried_before_every_door(tmp_path: Path) -> None:
    """Load balancers probe ``/healthz`` every few seconds; it matches before any door's or page's route."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'routes.db'}"))
    health = next(i for i, route in tried(app) if getattr(route, "path", "") == "/healthz")
    ours = [i for i, route in tried(app) if module_of(route).startswith("payroster.") and route.path != "/healthz"]
    assert health < min(ours)
