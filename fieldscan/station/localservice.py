"""A service on this machine for the demo, tests and benchmarks: run it, seed it, ask it.

Nothing here is needed in the field; a station talks to whatever service URL it is given.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from fieldscan.station.errors import StationError

if TYPE_CHECKING:
    from service.core.config import Settings

API = "/api/v1"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_service_process(
    env: Mapping[str, str], *, host: str = "127.0.0.1", timeout: float = 60.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the service as a uvicorn subprocess on a free port; return it and its base URL.

    For benchmarks, which want the server in its own process (its own GIL). ``env`` is the
    whole environment of the process. The caller stops it with :func:`stop_process`.
    """
    port = free_port(host)
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "service.main:create_app",
        "--host", host, "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=dict(env))
    base = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}{API}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the service did not start within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """Stop a service subprocess: terminate (a clean shutdown), then kill if it hangs."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextmanager
def service_in_thread(settings: Settings, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the service (uvicorn) in a daemon thread on a free port; yield its base URL.

    The thread is not the main one, so uvicorn leaves signal handling (Ctrl-C) to us.
    """
    import uvicorn

    from service.main import create_app

    app = create_app(settings)
    port = free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fieldscan-service", daemon=True)
    thread.start()
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive():
                raise StationError("the local service stopped while starting")
            if time.monotonic() > deadline:
                raise StationError("the local service did not start within 30 s")
            time.sleep(0.02)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.fieldscan.engine.dispose()


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What a fresh service was seeded with: an agency, people, a station device and its key."""

    agency_id: str
    agency_name: str
    officer: str
    supervisor: str
    password: str
    device_id: str
    device_key: str


def bootstrap(
    settings: Settings,
    *,
    agency_name: str = "Demo customs checkpoint",
    country: str = "PE",
    device_model: str = "OBP Raman module (emulated)",
    device_serial: str = "MOCK-0001",
) -> Bootstrap:
    """Create an agency, an officer, a supervisor and a field device with an API key."""
    from sqlmodel import Session

    from service import crud
    from service.core.db import make_engine
    from service.core.security import password_hasher
    from service.models import AgencyCreate, AgencyKind, DeviceCreate, Role, UserCreate
    from service.principal import SYSTEM

    password = uuid.uuid4().hex  # for this run only; printed by whoever needs it
    hasher = password_hasher(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
    )
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            agency = crud.create_agency(
                session=session,
                actor=SYSTEM,
                agency_in=AgencyCreate(name=agency_name, country=country, kind=AgencyKind.CUSTOMS),
            )
            names = {}
            for role in (Role.OFFICER, Role.SUPERVISOR):
                names[role] = f"{role.value}1"
                crud.create_user(
                    session=session,
                    actor=SYSTEM,
                    agency_id=agency.id,
                    user_in=UserCreate(username=names[role], role=role, password=password),
                    hasher=hasher,
                )
            device = crud.create_device(
                session=session,
                actor=SYSTEM,
                agency_id=agency.id,
                device_in=DeviceCreate(model=device_model, serial=device_serial, firmware="mock"),
            )
            _, key = crud.create_device_key(
                session=session, actor=SYSTEM, device_id=device.id, label="station"
            )
            session.commit()
            return Bootstrap(
                agency_id=str(agency.id),
                agency_name=agency_name,
                officer=names[Role.OFFICER],
                supervisor=names[Role.SUPERVISOR],
                password=password,
                device_id=str(device.id),
                device_key=key,
            )
    finally:
        engine.dispose()


def login(base_url: str, username: str, password: str, *, timeout: float = 10.0) -> str:
    """A bearer token for ``username`` (OAuth2 password flow)."""
    response = httpx.post(
        f"{base_url}{API}/login/access-token",
        data={"username": username, "password": password},
        timeout=timeout,
    )
    if response.status_code != 200:
        raise StationError(f"login as {username} failed: HTTP {response.status_code}")
    return str(response.json()["access_token"])


def verify_audit(base_url: str, token: str, *, timeout: float = 60.0) -> dict[str, Any]:
    """``GET /audit/verify`` as a supervisor: the service re-derives its audit chain."""
    response = httpx.get(
        f"{base_url}{API}/audit/verify",
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )
    if response.status_code != 200:
        raise StationError(f"audit verification failed: HTTP {response.status_code}")
    report: dict[str, Any] = response.json()
    return report
