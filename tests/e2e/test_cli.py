"""The command line: one-line errors, never a traceback for a user mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def durachat(
    data_dir: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durachat.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={"DURACHAT_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin", **env},
        check=False,
    )


def test_models_lists_provider_slash_model(tmp_path: Path) -> None:
    result = durachat(tmp_path, "models")
    assert result.returncode == 0 and result.stdout.splitlines() == ["demo/echo"]


def test_migrate_creates_the_database(tmp_path: Path) -> None:
    result = durachat(tmp_path / "new", "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new" / "durachat.db").exists()


def test_user_and_token_mistakes_are_one_line(tmp_path: Path) -> None:
    ok = durachat(
        tmp_path, "user", "create", "ann", "--admin", "--password-stdin", stdin="a good password\n"
    )
    assert ok.returncode == 0, ok.stderr
    for args, stdin, message in [
        (("user", "create", "ann", "--password-stdin"), "another password\n", "taken"),
        (("user", "create", "bob", "--password-stdin"), "short\n", "at least 8 characters"),
        (("user", "create", "b o b", "--password-stdin"), "long enough pw\n", "without spaces"),
        (("token", "create", "nobody"), "", "no user named 'nobody'"),
    ]:
        result = durachat(tmp_path, *args, stdin=stdin)
        assert result.returncode == 1, args
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    token = durachat(tmp_path, "token", "create", "ann")
    assert token.returncode == 0 and token.stdout.startswith("dct_")
    assert len(token.stdout.strip().splitlines()) == 1


def test_bad_settings_and_unsafe_auth_off_are_refused(tmp_path: Path) -> None:
    bad = durachat(tmp_path, "serve", DURACHAT_PORT="eighty")
    assert bad.returncode == 1 and "DURACHAT_PORT" in bad.stderr and "Traceback" not in bad.stderr
    unsafe = durachat(tmp_path, "serve", "--host", "0.0.0.0", DURACHAT_AUTH="off")
    assert unsafe.returncode == 1 and "DURACHAT_AUTH_OFF_I_UNDERSTAND" in unsafe.stderr
    missing = durachat(tmp_path, "models", DURACHAT_CONFIG=str(tmp_path / "none.toml"))
    assert missing.returncode == 1 and "cannot read DURACHAT_CONFIG" in missing.stderr


def test_every_command_has_help(tmp_path: Path) -> None:
    for args in [
        (),
        ("serve",),
        ("user", "create"),
        ("token", "create"),
        ("models",),
        ("migrate",),
    ]:
        result = durachat(tmp_path, *args, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, args
