"""Settings: declared once, read once, documented in the README, checked strictly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from durachat.errors import ConfigError
from durachat.settings import SETTINGS, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _documented_default(value: object) -> str:
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    rows = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\| `([A-Z][A-Z0-9_]+)` \| ([^|]+) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    for setting in SETTINGS:
        assert setting.env in rows, f"{setting.env} is not documented in README.md"
        assert rows[setting.env] == _documented_default(setting.default), setting.env
    assert set(rows) == {s.env for s in SETTINGS}, "README documents settings that do not exist"


def test_environment_then_file_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "durachat.toml"
    config.write_text("flush_ms = 100\nport = 6000\n")
    env = {"DURACHAT_FLUSH_MS": "400", "DURACHAT_FLUSH_CHUNKS": "9", "DURACHAT_CONFIG": str(config)}
    settings = load_settings(env, port=7000)
    assert (settings.flush_chunks, settings.flush_ms, settings.port) == (9, 100, 7000)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DURACHAT_PORT": "eighty"}, "DURACHAT_PORT: 'eighty' is not a valid int"),
        ({"DURACHAT_AUTH": "maybe"}, "DURACHAT_AUTH must be 'on' or 'off'"),
        ({"DURACHAT_FLUSH_CHUNKS": "0"}, "DURACHAT_FLUSH_CHUNKS must be at least 1"),
        ({"DURACHAT_AUTH_OFF_I_UNDERSTAND": "perhaps"}, "not a valid bool"),
        ({"DURACHAT_CONFIG": "/nonexistent/durachat.toml"}, "cannot read DURACHAT_CONFIG"),
    ],
)
def test_bad_values_are_one_clear_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env)


def test_unknown_keys_and_bad_toml_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("flush_chunkz = 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'flush_chunkz'"):
        load_settings({"DURACHAT_CONFIG": str(config)})
    config.write_text("flush_chunks = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"DURACHAT_CONFIG": str(config)})


def test_the_database_defaults_to_sqlite_in_the_data_dir() -> None:
    settings = load_settings({"DURACHAT_DATA_DIR": "/srv/dc"})
    assert settings.resolved_database_url == "sqlite:////srv/dc/durachat.db"


def write(tmp_path: Path, text: str) -> dict[str, str]:
    config = tmp_path / "durachat.toml"
    config.write_text(text)
    return {"DURACHAT_CONFIG": str(config), "LOCAL_KEY": "secret-value"}


def test_providers_and_models_tables(tmp_path: Path) -> None:
    env = write(
        tmp_path,
        """
[[providers]]
name = "local"
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "LOCAL_KEY"

[[models]]
id = "local/Qwen2.5-7B"
label = "Qwen"
prefill = false
context_tokens = 32768
""",
    )
    settings = load_settings(env)
    [provider] = settings.providers
    assert (provider.name, provider.kind, provider.api_key) == ("local", "openai", "secret-value")
    assert "secret-value" not in repr(provider)
    [model] = settings.models
    assert (model.id, model.label, model.prefill, model.context_tokens) == (
        "local/Qwen2.5-7B",
        "Qwen",
        False,
        32768,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[providers]]\nkind = "openai"\nbase_url = "http://x"', "'name' must be"),
        ('[[providers]]\nname = "a"\nkind = "cohere"\nbase_url = "http://x"', "'kind' must be"),
        ('[[providers]]\nname = "a"\nbase_url = "ftp://x"', "'base_url' must be"),
        ('[[providers]]\nname = "a"\nbase_url = "http://x"\napi_key_env = "NOPE"', "NOPE"),
        ('[[providers]]\nname = "a"\nbase_url = "http://x"\ncolour = 1', "unknown key 'colour'"),
        ('[[providers]]\nname = "demo"\nbase_url = "http://x"', "used twice"),
        ('[[models]]\nid = "no-slash"', "'id' must be 'provider/model'"),
        ('[[models]]\nid = "a/b"\nvision = "yes"', "'vision' must be true or false"),
        ('[[models]]\nid = "a/b"\ncontext_tokens = -5', "'context_tokens' must be"),
        ('models = "x"', "'models' must be an array of tables"),
    ],
)
def test_table_mistakes_name_the_entry_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load_settings(write(tmp_path, text))
    assert "durachat.toml" in str(caught.value)
