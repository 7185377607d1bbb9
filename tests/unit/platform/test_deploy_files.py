"""The deployment files hang together: compose has every part, the gateway config renders for it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "deploy" / "docker-compose.yml"
SERVICES = ("leads", "visits", "reviews", "rotation")


def test_compose_runs_kafka_postgres_every_service_and_the_gateway() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    parts = compose["services"]
    assert set(parts) == {"kafka", "postgres", "gateway", *SERVICES}
    assert parts["kafka"]["image"] == "apache/kafka:3.9.1"
    for service in SERVICES:
        env = parts[service]["environment"]
        assert env["SERVICE"] == service
        assert env["IRONARMY_STORE"] == "postgres" and env["IRONARMY_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["IRONARMY_ENVIRONMENT"] == "production"
        assert parts[service]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert parts["gateway"]["ports"] == ["8080:8080"]


def test_compose_is_valid_for_docker_where_its_client_exists() -> None:
    docker = shutil.which("docker")
    has_compose = (
        docker is not None
        and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0
    )
    if has_compose:
        env = {**os.environ, "IRONARMY_JWT_SECRET": "x" * 40}
        result = subprocess.run(
            [docker, "compose", "-f", str(COMPOSE), "config", "-q"], env=env, capture_output=True
        )
        assert result.returncode == 0, result.stderr.decode()
    else:  # no compose plugin on this machine: the YAML anchors must still resolve to full services
        parts = yaml.safe_load(COMPOSE.read_text())["services"]
        assert all("build" in parts[s] and "depends_on" in parts[s] for s in SERVICES)


def test_the_gateway_config_renders_and_passes_nginx_for_compose(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GATEWAY_RUN_DIR": str(tmp_path),
        "GATEWAY_LISTEN": "0.0.0.0",
        **{
            f"{s.upper()}_HOST": "127.0.0.1" for s in SERVICES
        },  # names compose resolves; nginx -t resolves them
        **{f"{s.upper()}_PORT": "8000" for s in SERVICES},
    }
    result = subprocess.run([str(REPO / "deploy/gateway/gateway.sh"), "render"], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    rendered = (tmp_path / "nginx.conf").read_text()
    assert "listen 0.0.0.0:" in rendered and "server 127.0.0.1:8000;" in rendered
