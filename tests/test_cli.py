"""`python main.py ...` as an operator runs it: real subprocesses, a config.toml in a temp dir."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from app.config import load_config
from app.context import build_context
from app.errors import UserError
from app.services import accounts
from tests.backends import make_config
from tests.conftest import PASSWORD
from tests.procs import free_port, one_line_error, run_cli

COMMANDS = [
    ["serve"],
    ["worker"],
    ["migrate"],
    ["user"],
    ["user", "create"],
    ["invite"],
    ["invite", "create"],
    ["doctor"],
    ["config"],
    ["config", "show"],
    ["backup"],
    ["restore"],
]


def config_path(tmp_path: Path, **sections) -> Path:
    make_config(tmp_path, **sections)
    return tmp_path / "config.toml"


@pytest.fixture
def site(tmp_path) -> Path:
    """A migrated rung-0 site; returns its config.toml."""
    path = config_path(tmp_path)
    result = run_cli("migrate", config=path)
    assert result.returncode == 0, result.stderr
    return path


def open_site(path: Path):
    return build_context(load_config(path, environ={}), register_tasks=False)


# --- help ---


def test_top_level_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "worker", "migrate", "user", "invite", "doctor", "config", "backup", "restore"):
        assert f"    {command}" in result.stdout, f"{command} missing from --help:\n{result.stdout}"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_answers_help(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: main.py {' '.join(command)}"), result.stdout
    assert "--config" in result.stdout
    assert result.stderr == ""


# --- where the config comes from ---


def test_config_flag_before_or_after_the_command(tmp_path):
    path = config_path(tmp_path, server={"port": 8123})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for argv in (["--config", path, "config", "show"], ["config", "show", "--config", path]):
        result = run_cli(*argv, cwd=elsewhere)
        assert result.returncode == 0, result.stderr
        shown = tomllib.loads(result.stdout)
        assert shown["server"]["port"] == 8123
        assert shown["storage"]["data_dir"] == str(tmp_path / "data")


def test_pinhole_config_environment_variable(tmp_path):
    path = config_path(tmp_path, server={"port": 8124})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("config", "show", env={"PINHOLE_CONFIG": str(path)}, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout)["server"]["port"] == 8124
    # And it is really used by a command that touches the site.
    result = run_cli("migrate", env={"PINHOLE_CONFIG": str(path)}, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "pinhole.sqlite3").is_file()


def test_environment_overrides_a_setting(tmp_path):
    path = config_path(tmp_path, server={"port": 8125})
    result = run_cli("config", "show", config=path, env={"PINHOLE_SERVER__PORT": "9191"})
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout)["server"]["port"] == 9191


# --- bad configuration: exit 2, one line naming the key and where it came from ---

BAD_CONFIGS = {
    "unknown key": ("[server]\nprot = 8000\n", {}, ["prot", "config.toml"]),
    "wrong type": ('[server]\nport = "eighty"\n', {}, ["port", "whole number", "config.toml"]),
    "port out of range": ("[server]\nport = 70000\n", {}, ["port", "70000", "config.toml"]),
    "unknown section": ("[srever]\nport = 1\n", {}, ["srever", "config.toml"]),
    "invalid TOML": ("[server\nport = 1\n", {}, ["not valid TOML", "config.toml"]),
    "unknown env override": ("", {"PINHOLE_SERVER__PROT": "1"}, ["PINHOLE_SERVER__PROT", "prot"]),
    "env of the wrong type": ("", {"PINHOLE_SERVER__PORT": "eighty"}, ["PINHOLE_SERVER__PORT", "whole number"]),
}


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["config", "show"], ["doctor"]], ids=" ".join)
@pytest.mark.parametrize("case", BAD_CONFIGS, ids=str)
def test_bad_config_is_one_line_and_exit_2(tmp_path, case, command):
    text, env, words = BAD_CONFIGS[case]
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n' + text)
    result = run_cli(*command, config=path, env=env, timeout=20)
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line_error(result)
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    assert not (tmp_path / "data").exists(), "a refused config must not create the data dir"


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["doctor"], ["user", "create", "ann", "--password-stdin"]])
def test_missing_config_file(tmp_path, command):
    result = run_cli(*command, config=tmp_path / "nope.toml", timeout=20)
    assert result.returncode == 2
    line = one_line_error(result)
    assert "nope.toml" in line and "not found" in line


def test_missing_default_config_names_the_way_out(tmp_path):
    result = run_cli("migrate", cwd=tmp_path)
    assert result.returncode == 2
    line = one_line_error(result)
    assert "config.toml" in line and "--config" in line and "PINHOLE_CONFIG" in line


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["doctor"], ["backup", "x.tar"]], ids=" ".join)
def test_unwritable_data_dir(tmp_path, command):
    # We may be root, so permissions do not stop us: a path under a regular file cannot be a directory.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    # A free port, so that `serve` gets as far as the data dir.
    path = config_path(tmp_path, storage={"data_dir": str(blocker / "data")}, server={"port": free_port()})
    result = run_cli(*command, config=path, timeout=20)
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line_error(result)
    assert "data_dir" in line and str(blocker / "data") in line and "config.toml" in line


def test_serve_port_flag_out_of_range(tmp_path):
    result = run_cli("serve", "--port", "70000", config=config_path(tmp_path))
    assert result.returncode == 2
    line = one_line_error(result)
    assert "--port" in line and "70000" in line
    assert "PINHOLE_SERVER__PORT" not in line, "the operator set no environment variable"


# --- migrate ---


def test_migrate_applies_then_has_nothing_to_do(tmp_path):
    path = config_path(tmp_path)
    first = run_cli("migrate", config=path)
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout and "0001_accounts" in first.stdout
    second = run_cli("migrate", config=path)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    ctx = open_site(path)
    try:
        assert ctx.db.schema_version() >= 1
        assert ctx.db.integrity() == "ok"
    finally:
        ctx.close()


@pytest.mark.parametrize(
    "command",
    [["user", "create", "ann", "--password-stdin"], ["invite", "create"], ["backup", "b.tar"], ["worker"], ["serve"]],
    ids=" ".join,
)
def test_commands_on_an_unmigrated_site_say_to_migrate(tmp_path, command):
    path = config_path(tmp_path, server={"migrate_on_start": False, "port": free_port()})
    result = run_cli(*command, config=path, stdin=PASSWORD + "\n", timeout=20)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "main.py migrate" in one_line_error(result)
    assert not (tmp_path / "b.tar").exists()


# --- user create ---


def create_user(path: Path, name: str, password: str = PASSWORD, *flags: str):
    return run_cli("user", "create", name, "--password-stdin", *flags, config=path, stdin=password + "\n")


def test_user_create_makes_accounts_that_can_log_in(site):
    first = create_user(site, "first")
    assert first.returncode == 0, first.stderr
    plain = create_user(site, "Plain.User")
    assert plain.returncode == 0, plain.stderr
    assert "created user plain.user" in plain.stdout
    boss = create_user(site, "boss", "another good one", "--admin")
    assert boss.returncode == 0, boss.stderr
    assert "created admin boss" in boss.stdout
    ctx = open_site(site)
    try:
        user = accounts.authenticate(ctx, "plain.user", PASSWORD)
        assert user is not None and user.username == "plain.user"
        assert not user.is_admin, "a user made without --admin (not the first) must not be an admin"
        assert accounts.authenticate(ctx, "plain.user", PASSWORD + "x") is None
        admin = accounts.authenticate(ctx, "boss", "another good one")
        assert admin is not None and admin.is_admin
        assert accounts.find_user(ctx, "first").is_admin, "the first account becomes the admin"
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("name", "password", "words"),
    [
        ("Bad Name!", PASSWORD, ["Usernames may use"]),
        ("ann", "short", ["at least 8 characters"]),
        ("ann", "", ["at least 8 characters"]),
    ],
    ids=["invalid name", "short password", "empty password"],
)
def test_user_create_rejects_bad_input(site, name, password, words):
    result = create_user(site, name, password)
    assert result.returncode == 1, result.stdout + result.stderr
    line = one_line_error(result)
    assert line.startswith("error: ")
    for word in words:
        assert word in line
    ctx = open_site(site)
    try:
        assert accounts.find_user(ctx, "ann") is None
    finally:
        ctx.close()


def test_user_create_rejects_a_duplicate(site):
    assert create_user(site, "ann").returncode == 0
    again = create_user(site, "ANN", "a different password")
    assert again.returncode == 1
    assert "taken" in one_line_error(again)
    ctx = open_site(site)
    try:
        # The original account is untouched: its password still works, the new one does not.
        assert accounts.authenticate(ctx, "ann", PASSWORD) is not None
        assert accounts.authenticate(ctx, "ann", "a different password") is None
    finally:
        ctx.close()


# --- invite create ---


def test_invite_code_works_once_in_invite_mode(tmp_path):
    path = config_path(tmp_path, accounts={"registration": "invite"})
    assert run_cli("migrate", config=path).returncode == 0
    result = run_cli("invite", "create", config=path)
    assert result.returncode == 0, result.stderr
    code = result.stdout.strip()
    assert code and len(code.splitlines()) == 1, result.stdout
    assert f"/signup?invite={code}" in result.stderr
    ctx = open_site(path)
    try:
        with pytest.raises(UserError, match="invite"):
            accounts.create_user(ctx, "nocode", PASSWORD)
        with pytest.raises(UserError, match="not valid"):
            accounts.create_user(ctx, "wrongcode", PASSWORD, invite_code=code + "x")
        user = accounts.create_user(ctx, "invited", PASSWORD, invite_code=code)
        assert accounts.authenticate(ctx, "invited", PASSWORD).id == user.id
        with pytest.raises(UserError, match="not valid"):
            accounts.create_user(ctx, "second", PASSWORD, invite_code=code)
        assert accounts.find_user(ctx, "second") is None
    finally:
        ctx.close()


def test_invite_create_notes_when_codes_are_not_needed(site):
    result = run_cli("invite", "create", config=site)
    assert result.returncode == 0, result.stderr
    assert 'registration = "open"' in result.stderr


# --- doctor ---

SECTIONS = ["database", "cache", "media", "feeds", "queue", "sessions", "events"]


def test_doctor_on_a_healthy_site(site):
    result = run_cli("doctor", config=site)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for section in SECTIONS:
        matching = [line for line in lines if f"[{section}]" in line]
        assert len(matching) == 1, f"[{section}]: {matching}\n{result.stdout}"
        assert matching[0].startswith("ok"), matching[0]
    assert "FAIL" not in result.stdout
    assert lines[-1] == "all good"


def test_doctor_names_pending_migrations(tmp_path):
    path = config_path(tmp_path)
    result = run_cli("doctor", config=path)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert any("pending" in line and "migrate" in line for line in fails), result.stdout
    assert "problem(s) found" in result.stdout.splitlines()[-1]


# --- config show ---


def test_config_show_is_toml_with_the_secret_masked(tmp_path):
    secret = "s3cret-value-that-must-not-leak"
    path = config_path(tmp_path, server={"secret_key": secret, "port": 8130})
    result = run_cli("config", "show", config=path)
    assert result.returncode == 0, result.stderr
    shown = tomllib.loads(result.stdout)
    assert shown["server"]["secret_key"] == "***"
    assert secret not in result.stdout
    assert shown["server"]["port"] == 8130
    assert shown["database"]["logical_shards"] == 8
    # Every section the app knows is shown, with its effective values.
    assert set(shown) >= {"server", "storage", "database", "cache", "media", "queue", "accounts", "log"}

    from_env = run_cli("config", "show", config=path, env={"PINHOLE_SERVER__SECRET_KEY": "env-secret-xyz"})
    assert from_env.returncode == 0
    assert "env-secret-xyz" not in from_env.stdout
    assert tomllib.loads(from_env.stdout)["server"]["secret_key"] == "***"


def test_config_show_leaves_an_unset_secret_empty(tmp_path):
    result = run_cli("config", "show", config=config_path(tmp_path))
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout)["server"]["secret_key"] == ""
