"""Every DuraChat setting, declared once.

A setting has a name, a type, a default, a help text and an environment variable.
`load_settings()` reads them once (environment, then the TOML file named by
`DURACHAT_CONFIG`, whose lower-case keys override the environment) into a frozen
`Settings` object that the composition root passes down. Nothing else in the
package reads `os.environ`; the README's configuration table is checked against
`SETTINGS` by a test.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from durachat.errors import ConfigError


def _setting(default: Any, help: str, env: str | None = None) -> Any:
    """Declare a setting: its default, the help text shown in the README, and its
    environment variable when that is not `DURACHAT_<NAME>` (vendor keys)."""
    return field(default=default, metadata={"help": help, "env": env})


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A named OpenAI-compatible (or other) provider from the `[[providers]]` table."""

    name: str
    kind: str
    base_url: str
    api_key: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model listed in the `[[models]]` table, with its capabilities."""

    id: str
    label: str = ""
    vision: bool | None = None
    prefill: bool | None = None
    system_prompt: bool | None = None
    context_tokens: int | None = None


PROVIDER_KINDS = ("openai", "anthropic", "gemini", "ollama")


@dataclass(frozen=True)
class Settings:
    """The settings in force, read once. Each field is one setting, `DURACHAT_<NAME>`."""

    data_dir: str = _setting("./data", "Directory of the SQLite database and uploaded files.")
    database_url: str = _setting(
        "", "`sqlite:///<data dir>/durachat.db` when empty, or `postgresql://...`."
    )
    host: str = _setting("127.0.0.1", "Address `durachat serve` listens on.")
    port: int = _setting(5787, "Port `durachat serve` listens on.")
    auth: str = _setting(
        "on",
        "`on`: accounts and API tokens; `off`: single-user mode without login (refused on "
        "a non-loopback host unless `DURACHAT_AUTH_OFF_I_UNDERSTAND=1`).",
    )
    auth_off_i_understand: bool = _setting(False, "Allow `DURACHAT_AUTH=off` off loopback.")
    allowed_origins: str = _setting(
        "", "Browser origins allowed besides the server's own (comma separated)."
    )
    public_url: str = _setting(
        "", "The URL users reach (behind a proxy); its origin is the server's own origin."
    )
    trusted_proxies: str = _setting(
        "",
        "Addresses or networks of reverse proxies (comma separated) whose "
        "`X-Forwarded-For`/`-Proto` are believed; nobody else's are.",
    )
    session_ttl_s: int = _setting(1_209_600, "Lifetime of a login session, seconds.")
    login_window_s: int = _setting(900, "Window in which failed logins are counted, seconds.")
    login_max_per_account: int = _setting(
        10, "Failed logins for one account from one address within the window before 429."
    )
    login_max_per_address: int = _setting(
        30, "Failed logins from one address in all within the window before 429."
    )
    default_model: str = _setting(
        "", "Model for new conversations; empty: the first configured, else `demo/echo`."
    )
    flush_chunks: int = _setting(5, "A streaming reply is written every N text events...")
    flush_ms: int = _setting(250, "...or every M ms, whichever comes first, and at its end.")
    demo_delay_ms: int = _setting(30, "Delay per chunk of the offline model `demo/echo`.")
    max_reply_seconds: int = _setting(
        600, "A reply running longer is ended (`complete`, finish reason `length`)."
    )
    max_reply_chars: int = _setting(
        200_000, "A reply growing larger is ended (`complete`, finish reason `length`)."
    )
    user_concurrent_replies: int = _setting(4, "Replies one user may have streaming at once.")
    max_prompt_chars: int = _setting(100_000, "Longest prompt accepted, in Unicode characters.")
    max_frame_bytes: int = _setting(1_048_576, "Largest WebSocket frame accepted (close 1009).")
    import_max_bytes: int = _setting(
        52_428_800, "Largest file `POST /api/import` accepts, in bytes (413 above)."
    )
    upload_dir: str = _setting(
        "", "Directory of uploaded files; empty: `uploads` in the data directory."
    )
    upload_max_bytes: int = _setting(
        10_485_760, "Largest file `POST /api/uploads` accepts, in bytes (413 above)."
    )
    upload_max_pixels: int = _setting(
        25_000_000, "Largest image accepted, in pixels (width times height)."
    )
    upload_max_text_chars: int = _setting(
        200_000, "Most characters a text file, or the text of a PDF, may inline into a prompt."
    )
    upload_max_pdf_pages: int = _setting(200, "Most pages of a PDF whose text is extracted.")
    outbox_frames: int = _setting(
        4096, "Frames queued for one socket before they are dropped for a `resync`."
    )
    replay_ttl_s: int = _setting(300, "Seconds a reply's replay log is kept after it ends.")
    redis_url: str = _setting(
        "", "Redis for many nodes, `redis://host:6379/0`; empty: one node, events in process."
    )
    redis_stream_max: int = _setting(
        20_000, "Events one reply's (or conversation's) Redis Stream keeps; older ones are trimmed."
    )
    redis_timeout_ms: int = _setting(
        2000, "Redis command timeout, and the longest a subscribe waits for live events."
    )
    redis_retry_max_ms: int = _setting(
        2000, "Longest wait between attempts to reach Redis again after it failed."
    )
    redis_buffer_events: int = _setting(
        100_000,
        "Events a node keeps for Redis while it is unreachable; past that the oldest are "
        "dropped and other nodes' readers get `resync`.",
    )
    database_pool_size: int = _setting(
        10,
        "PostgreSQL connections each process keeps (as many again in bursts): with "
        "`--workers N` or several nodes, the database sees N times this.",
    )
    lease_ms: int = _setting(
        15_000,
        "Generation lease of many nodes: a reply whose node stops renewing it is marked "
        "`interrupted` by another node within this time.",
    )
    sqlite_busy_ms: int = _setting(5000, "How long a SQLite write waits for a lock held elsewhere.")
    sqlite_max_pages: int = _setting(
        0, "Cap on the SQLite database's size in pages (0: none); past it writes fail as full."
    )
    shutdown_grace_s: float = _setting(30.0, "Graceful-shutdown wait for running replies.")
    title_model: str = _setting("", "Model that writes titles; empty: the conversation's model.")
    provider_connect_s: float = _setting(10.0, "Provider connect timeout, seconds.")
    provider_first_token_s: float = _setting(
        120.0, "Provider time-to-first-token timeout, seconds."
    )
    provider_idle_s: float = _setting(120.0, "Provider silence-between-chunks timeout, seconds.")
    provider_retries: int = _setting(
        3, "Retries of 429/5xx/connection errors before the first token (with backoff)."
    )
    openai_api_key: str = _setting("", "OpenAI API key.", env="OPENAI_API_KEY")
    openai_base_url: str = _setting(
        "", "An OpenAI-compatible server (vLLM, llama.cpp, LM Studio, ...).", env="OPENAI_BASE_URL"
    )
    anthropic_api_key: str = _setting("", "Anthropic API key.", env="ANTHROPIC_API_KEY")
    anthropic_base_url: str = _setting("", "Anthropic API base URL.", env="ANTHROPIC_BASE_URL")
    gemini_api_key: str = _setting("", "Google Gemini API key.", env="GEMINI_API_KEY")
    gemini_base_url: str = _setting("", "Gemini API base URL.", env="GEMINI_BASE_URL")
    ollama_base_url: str = _setting(
        "", "Ollama's native API, e.g. `http://127.0.0.1:11434`.", env="OLLAMA_BASE_URL"
    )
    log_format: str = _setting("text", "`text`, or `json` for structured logs.")
    log_level: str = _setting("info", "debug, info, warning or error.")
    providers: tuple[ProviderSpec, ...] = field(default=(), metadata={"toml_only": True})
    models: tuple[ModelSpec, ...] = field(default=(), metadata={"toml_only": True})

    @property
    def auth_enabled(self) -> bool:
        return self.auth != "off"

    @property
    def proxy_networks(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'durachat.db'}"

    @property
    def uploads_path(self) -> Path:
        return Path(self.upload_dir) if self.upload_dir else Path(self.data_dir) / "uploads"

    @property
    def extra_origins(self) -> frozenset[str]:
        return frozenset(
            o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()
        )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SettingInfo:
    """One setting as documented: name, environment variable, type, default, help."""

    name: str
    kind: type
    default: Any
    help: str
    env: str


_KINDS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}

SETTINGS: tuple[SettingInfo, ...] = tuple(
    SettingInfo(
        f.name,
        _KINDS[str(f.type)],
        f.default,
        f.metadata["help"],
        f.metadata["env"] or "DURACHAT_" + f.name.upper(),
    )
    for f in dataclasses.fields(Settings)
    if not f.metadata.get("toml_only")
)
_BY_NAME = {s.name: s for s in SETTINGS}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(setting: SettingInfo, raw: object) -> Any:
    try:
        if setting.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(text)
        if isinstance(raw, bool):
            raise ValueError(raw)
        return setting.kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{setting.env}: {raw!r} is not a valid {setting.kind.__name__}"
        ) from None


def _check(values: dict[str, Any]) -> None:
    if values["auth"] not in ("on", "off"):
        raise ConfigError(f"DURACHAT_AUTH must be 'on' or 'off', not {values['auth']!r}")
    for name in (
        "flush_chunks",
        "flush_ms",
        "outbox_frames",
        "max_prompt_chars",
        "import_max_bytes",
        "upload_max_bytes",
        "upload_max_pixels",
        "upload_max_text_chars",
        "upload_max_pdf_pages",
        "redis_stream_max",
        "redis_timeout_ms",
        "redis_retry_max_ms",
        "redis_buffer_events",
        "lease_ms",
        "database_pool_size",
    ):
        if values[name] < 1:
            raise ConfigError(f"DURACHAT_{name.upper()} must be at least 1")
    if values["log_format"] not in ("text", "json"):
        raise ConfigError("DURACHAT_LOG_FORMAT must be 'text' or 'json'")


def _providers(raw: object, env: Mapping[str, str], where: str) -> tuple[ProviderSpec, ...]:
    """The `[[providers]]` table: each entry's keys checked, its key read from the env."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: 'providers' must be an array of tables ([[providers]])")
    specs: list[ProviderSpec] = []
    for number, entry in enumerate(raw, 1):
        here = f"{where} [[providers]] #{number}"
        entry = _table(entry, here, {"name", "kind", "base_url", "api_key_env"})
        name, kind = entry.get("name"), entry.get("kind", "openai")
        if not isinstance(name, str) or not name or "/" in name:
            raise ConfigError(f"{here}: 'name' must be a non-empty string without '/'")
        if kind not in PROVIDER_KINDS:
            raise ConfigError(f"{here}: 'kind' must be one of {', '.join(PROVIDER_KINDS)}")
        if name in {s.name for s in specs} or name == "demo":
            raise ConfigError(f"{here}: the provider name {name!r} is used twice")
        base_url = entry.get("base_url", "")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{here}: 'base_url' must be an http(s) URL")
        key_env = entry.get("api_key_env", "")
        if key_env and key_env not in env:
            raise ConfigError(f"{here}: api_key_env names {key_env}, which is not set")
        specs.append(ProviderSpec(name, kind, base_url, env.get(key_env, "") if key_env else ""))
    return tuple(specs)


def _models(raw: object, where: str) -> tuple[ModelSpec, ...]:
    """The `[[models]]` table: explicit models and their capabilities."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: 'models' must be an array of tables ([[models]])")
    keys = {"id", "label", "vision", "prefill", "system_prompt", "context_tokens"}
    specs = []
    for number, entry in enumerate(raw, 1):
        here = f"{where} [[models]] #{number}"
        entry = _table(entry, here, keys)
        model_id = entry.get("id")
        if not isinstance(model_id, str) or "/" not in model_id.strip("/"):
            raise ConfigError(f"{here}: 'id' must be 'provider/model'")
        for flag in ("vision", "prefill", "system_prompt"):
            if flag in entry and not isinstance(entry[flag], bool):
                raise ConfigError(f"{here}: {flag!r} must be true or false")
        context = entry.get("context_tokens")
        if context is not None and (not isinstance(context, int) or context < 1):
            raise ConfigError(f"{here}: 'context_tokens' must be a positive whole number")
        specs.append(
            ModelSpec(
                model_id,
                str(entry.get("label", "")),
                entry.get("vision"),
                entry.get("prefill"),
                entry.get("system_prompt"),
                context,
            )
        )
    return tuple(specs)


def _table(entry: object, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = sorted(set(entry) - keys)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    return entry


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read DURACHAT_CONFIG {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"DURACHAT_CONFIG {path} is not valid TOML: {exc}") from None


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the settings: defaults, environment, the TOML file, then explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    for setting in SETTINGS:
        if setting.env in env:
            values[setting.name] = _convert(setting, env[setting.env])
    providers: tuple[ProviderSpec, ...] = ()
    models: tuple[ModelSpec, ...] = ()
    config_path = env.get("DURACHAT_CONFIG")
    if config_path:
        where = f"DURACHAT_CONFIG {config_path}"
        for key, raw in _read_toml(config_path).items():
            if key == "models":
                models = _models(raw, where)
            elif key == "providers":
                providers = _providers(raw, env, where)
            elif key in _BY_NAME:
                values[key] = _convert(_BY_NAME[key], raw)
            else:
                raise ConfigError(f"{where}: unknown setting {key!r}")
    for key, raw in overrides.items():
        if raw is not None:
            values[key] = _convert(_BY_NAME[key], raw)
    _check(values)
    return Settings(**values, providers=providers, models=models)
