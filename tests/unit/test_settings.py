from __future__ import annotations

import pytest

from threadline.errors import ConfigurationError
from threadline.settings import ApiSettings, Settings, _read

REQUIRED = {"TABLE_NAME": "threadline-table", "BUCKET_NAME": "threadline-files"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*REQUIRED, "OPENAI_BACKEND", "OPENAI_BASE_URL", "STATE_MACHINE_ARN"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_fill_everything_but_the_resources(env: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        env.setenv(name, value)
    settings = _read(Settings)
    assert settings.table_name == "threadline-table"
    assert settings.openai_backend == "responses"
    assert settings.run_timeout_seconds == 300
    assert settings.openai_base_url is None


def test_missing_variables_are_named(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _read(Settings)
    assert "TABLE_NAME" in str(caught.value)
    assert "BUCKET_NAME" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENAI_BACKEND", "chat"),
        ("RUN_TIMEOUT_SECONDS", "-5"),
        ("OPENAI_BASE_URL", "not a url"),
        ("THREAD_REUSE_HOURS", "soon"),
    ],
)
def test_bad_values_are_named(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    for required, required_value in REQUIRED.items():
        env.setenv(required, required_value)
    env.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        _read(Settings)


def test_blank_optional_variables_mean_unset(env: pytest.MonkeyPatch) -> None:
    """CloudFormation passes an empty parameter as an empty string."""
    for name, value in REQUIRED.items():
        env.setenv(name, value)
    env.setenv("OPENAI_BASE_URL", "")
    env.setenv("OPENAI_API_KEY_SECRET_NAME", "")
    env.setenv("UPLOAD_ALLOWED_TYPES", "")
    settings = _read(Settings)
    assert settings.openai_base_url is None
    assert settings.openai_api_key_secret_name is None
    assert settings.upload_allowed_types is None


def test_api_settings_need_the_state_machine(env: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        env.setenv(name, value)
    with pytest.raises(ConfigurationError, match="STATE_MACHINE_ARN"):
        _read(ApiSettings)
