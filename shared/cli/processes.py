"""Starting and stopping the system's processes: the broker, the services, the gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("leads", "visits", "reviews", "rotation")
PORTS = {"leads": 8001, "visits": 8002, "reviews": 8003, "rotation": 8004}
GATEWAY_PORT = 8080


def available_services() -> list[str]:
    return [s for s in SERVICES if (REPO / "services" / s / "main.py").exists()]


def run_script(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(REPO / args[0]), *args[1:]], check=True, env={**os.environ, **(env or {})})


@dataclass
class System:
    """The processes `ironarmy up` started, to wait on and stop together."""

    env: dict[str, str]
    base_port: int = 8001
    gateway_port: int = GATEWAY_PORT
    gateway_run_dir: Path = REPO / "var" / "gateway"
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def port(self, service: str) -> int:
        return self.base_port + SERVICES.index(service)

    def start_service(self, service: str, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.logs[service] = log_dir / f"{service}.log"
        # The child keeps its own copy of the descriptor; ours is closed once it has started.
        with self.logs[service].open("ab") as log:
            self.processes[service] = self._spawn(service, log)

    def _spawn(self, service: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"services.{service}.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port(service)),
                "--root-path",
                f"/{service}",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, service: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port(service)}/readyz"
        while time.monotonic() < deadline:
            process = self.processes[service]
            if process.poll() is not None:
                raise RuntimeError(f"{service} exited with {process.returncode}; see {self.logs[service]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{service} not ready after {timeout:.0f}s ({url})")

    def gateway_env(self) -> dict[str, str]:
        env = {"GATEWAY_PORT": str(self.gateway_port), "GATEWAY_RUN_DIR": str(self.gateway_run_dir)}
        env.update({f"{s.upper()}_PORT": str(self.port(s)) for s in SERVICES})
        return env

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()  # reaped, so no zombie outlives the system
        self.processes.clear()


@contextmanager
def running_system(system: System, services: list[str], log_dir: Path, gateway: bool) -> Iterator[System]:
    try:
        for service in services:
            system.start_service(service, log_dir)
        for service in services:
            system.wait_ready(service)
        if gateway:
            run_script("deploy/gateway/gateway.sh", "up", env=system.gateway_env())
        yield system
    finally:
        system.stop()
        if gateway:
            run_script("deploy/gateway/gateway.sh", "stop", env=system.gateway_env())
