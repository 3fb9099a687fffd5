"""Fixtures: every database test runs on SQLite, and on PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.main import create_app
from service.testing import World, backends, fast_settings, isolated_database, seed_world


@pytest.fixture(scope="module", params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    tmp = tmp_path_factory.mktemp(f"svc-{backend}")
    with isolated_database(backend, tmp) as url:
        yield fast_settings(data_dir=tmp, database_url=url)


@pytest.fixture(scope="module")
def app_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as client:
        yield client
    app.state.fieldscan.engine.dispose()


@pytest.fixture(scope="module")
def world(settings: Settings, app_client: TestClient) -> World:
    return seed_world(settings)


class Api:
    """A logged-in client: ``api.get(path)`` with the user's bearer token."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def _h(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**self.headers, **(extra or {})}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get("/api/v1" + path, headers=self._h(kw.pop("headers", None)), **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post("/api/v1" + path, headers=self._h(kw.pop("headers", None)), **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.client.patch("/api/v1" + path, headers=self._h(kw.pop("headers", None)), **kw)


def login(client: TestClient, username: str, password: str) -> Api:
    r = client.post("/api/v1/login/access-token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return Api(client, {"Authorization": f"Bearer {r.json()['access_token']}"})


def audit_actions(api: Any, entity_id: str) -> list[str]:
    """The actions on one record in the verified audit chain, oldest first (every page)."""
    report = api.get("/audit/verify").json()  # verifying links every pending event first
    assert report["ok"], report["problems"]
    events: list[dict[str, Any]] = []
    while page := api.get(
        "/audit/events", params={"after_seq": events[-1]["seq"] if events else 0, "limit": 1000}
    ).json():
        events += page
    return [e["action"] for e in events if e["entity_id"] == entity_id]


@pytest.fixture(scope="module")
def as_user(app_client: TestClient, world: World) -> Any:
    cache: dict[tuple[str, str], Api] = {}

    def get(agency: str, role: str) -> Api:
        if (agency, role) not in cache:
            cache[(agency, role)] = login(app_client, world.users[agency][role], world.password)
        return cache[(agency, role)]

    return get


@pytest.fixture(scope="module")
def as_device(app_client: TestClient, world: World) -> Any:
    def get(agency: str) -> Api:
        return Api(app_client, {"X-Device-Key": world.device_keys[agency]})

    return get


@pytest.fixture
def fresh_settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    """A database of its own (for tests that tamper with the whole audit chain)."""
    with isolated_database(backend, tmp_path) as url:
        yield fast_settings(data_dir=tmp_path, database_url=url)
