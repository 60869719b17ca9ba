"""Settings are declared once: .env.example is generated from the declarations and the checked-in
file is that output; each example value reads back as the setting's default; secrets stay hidden."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from processes import ROOT, run_python

from comet.core.config import ConfigError, Settings, declared, parse_env_file
from comet.core.config.example import EXAMPLE_PATH, render
from comet.core.config.settings import settings_from_mapping


def test_the_checked_in_env_example_is_the_generated_one() -> None:
    assert EXAMPLE_PATH == ROOT / ".env.example"
    assert EXAMPLE_PATH.read_text(encoding="utf-8") == render()
    ok = run_python("-m", "comet.core.config.example", "--check", cwd=ROOT, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_check_fails_on_a_file_that_drifted(tmp_path: Path) -> None:
    drifted = tmp_path / ".env.example"
    drifted.write_text(render().replace("COMET_PREFIX=!", "COMET_PREFIX=?"), encoding="utf-8")
    result = run_python(
        "-m", "comet.core.config.example", "--check", "--path", str(drifted), cwd=ROOT, timeout=60
    )
    assert result.returncode == 1
    assert "python -m comet.core.config.example" in result.stdout


def test_every_setting_has_one_variable_and_the_example_reads_back_as_the_defaults() -> None:
    names = [variable.name for _, variable in declared()]
    assert len(names) == len(set(names)) == len(dataclasses.fields(Settings))
    assert all(name.startswith("COMET_") for name in names)
    example = parse_env_file(render())
    assert list(example) == names
    assert settings_from_mapping(example) == Settings()


def test_secrets_are_never_shown() -> None:
    secret_fields = {f.name for f, variable in declared() if variable.secret}
    assert secret_fields == {"token", "metrics_basic_auth", "secrets"}
    settings = Settings(token="abcdefgh.secret", secrets=("hidden-value",))
    assert "abcdefgh.secret" not in repr(settings) and "hidden-value" not in repr(settings)
    assert settings.describe()["token"] == "(set)"
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping({"COMET_METRICS_BASIC_AUTH": "no-colon-secret"})
    assert "no-colon-secret" not in str(raised.value)
    assert str(raised.value).startswith("COMET_METRICS_BASIC_AUTH: expected user:password")
