"""One set of CLI conventions: --version, usage errors, option names, help at 80 columns, confirmations, empty lists."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import ROOT
from tests.ops.opsdata import Row, insert_rows
from tests.test_cli_widths import ANSI


def test_version(cli: Callable[..., Any]) -> None:
    from importlib.metadata import version

    result = cli("--version")
    assert (result.exit_code, result.stdout) == (0, f"connectorctl {version('connectorctl')}\n")


@pytest.mark.parametrize(("args", "message"), [
    (("logs", "list", "--servce", "x"), "error [usage]: No such option: --servce"),
    (("metrics", "--servic", "x"), "error [usage]: No such option: --servic (Possible options: --service"),
    (("logs", "list", "--limit"), "error [usage]: Option '--limit' requires an argument."),
    (("logs", "list", "--limit", "many"), "error [usage]: Invalid value for '--limit' / '-n': Input should be a valid integer"),
    (("sned",), "error [usage]: No such command 'sned'."),
])
def test_usage_errors_are_one_line_in_our_style_with_exit_2(cli: Callable[..., Any], args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2 and result.stdout == ""
    first, hint = result.stderr.splitlines()
    assert first.startswith(message), result.stderr
    assert hint.startswith("  hint: connectorctl") and hint.endswith("--help")


def test_limit_is_n_on_both_log_commands(cli: Callable[..., Any], home: Path) -> None:
    from datetime import timedelta

    insert_rows(home / "connectorctl.db", [Row(timedelta(minutes=m)) for m in range(5)])
    for command in (("logs", "list"), ("logs", "tail")):
        for flag in ("-n", "--limit"):
            assert len(cli(*command, flag, "2", "-o", "jsonl").stdout.splitlines()) == 2, (command, flag)


def test_service_option_wherever_a_service_is_chosen(cli: Callable[..., Any]) -> None:
    tripped = cli("circuit", "trip", "--service", "file", "--reason", "test", "-o", "json")
    assert tripped.exit_code == 0 and json.loads(tripped.stdout)["state"] == "forced_open"
    assert json.loads(cli("circuit", "show", "--service", "file", "-o", "json").stdout)["reason"] == "test"
    assert cli("circuit", "reset", "file").exit_code == 0  # the positional stays as a shortcut
    assert json.loads(cli("metrics", "--service", "file", "-o", "json").stdout)["service"] == "file"
    assert json.loads(cli("metrics", "file", "-o", "json").stdout)["service"] == "file"
    both = cli("metrics", "file", "--service", "fake")
    assert both.exit_code == 2 and "two services given" in both.stderr
    missing = cli("circuit", "show")
    assert missing.exit_code == 2 and "give it as SERVICE or --service" in missing.stderr


def all_command_paths() -> list[list[str]]:
    """Every group and command, built the way ``--help`` builds them (the root loads its groups lazily)."""
    import typer

    from connectorctl.cli.main import app

    root = typer.main.get_command(app)
    ctx = typer.Context(root)

    def walk(command: Any, path: list[str]) -> list[list[str]]:
        if not hasattr(command, "list_commands"):
            return [path]
        subs = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
        return [path] + [p for name, sub in subs for p in walk(sub, [*path, name])]

    return walk(root, [])


TYPE_NAME = re.compile(r"<(str|int|float|bool|path|text|list\[[^\]]*\]|[a-z]+ range)>", re.I)


def test_help_reads_at_80_columns_without_type_names(cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    paths = all_command_paths()
    assert len(paths) > 60 and ["storage", "rm"] in paths and ["suppressions", "add"] in paths
    for path in paths:
        result = cli(*path, "--help")
        text, where = result.stdout, " ".join(["connectorctl", *path])
        assert result.exit_code == 0 and text.startswith("Usage: "), f"{where}:\n{result.output}"
        assert not TYPE_NAME.search(text), f"{where}:\n{text}"
        assert max(len(line) for line in text.splitlines()) <= 80, f"{where}:\n{text}"
        listing = text.partition("\nCommands:\n")[2].splitlines()
        cut = [line for line in listing if line.rstrip().endswith(("...", "\u2026"))]
        assert not cut, f"{where}: summary cut short:\n{text}"
        assert not re.search(r"[{]\w+[}]|\[\[", text.splitlines()[0]), f"{where}: usage line reads oddly:\n{text}"


def test_commands_are_listed_in_the_order_people_use_them(cli: Callable[..., Any]) -> None:
    text = cli("--help").stdout
    listed = re.findall(r"^  (\w+)\s", text.split("Commands:", 1)[1], flags=re.M)
    assert listed[:11] == ["send", "logs", "metrics", "status", "circuit", "creds", "config", "serve", "webhook", "init", "demo"]


def test_empty_lists_say_what_to_do_next(cli: Callable[..., Any]) -> None:
    """On stderr, with stdout empty; scripts get data, not advice."""
    hints = {  # metrics first: storage ls is a logged call to the local store
        ("metrics",): "widen --since, or make one: connectorctl send email",
        ("logs", "list"): "connectorctl send email",
        ("creds", "list"): "connectorctl creds set SERVICE",
        ("messages", "list"): "connectorctl send email",
        ("suppressions", "list"): "connectorctl suppressions add ADDRESS",
        ("storage", "ls"): "connectorctl storage put FILE KEY",
        ("inbound", "list"): "point a vendor's inbound route at `connectorctl serve`",
    }
    for command, hint in hints.items():
        result = cli(*command)
        assert result.exit_code == 0 and result.stdout == "" and hint in result.stderr, (command, result.output)
    assert json.loads(cli("creds", "list", "-o", "json").stdout) == []
    assert json.loads(cli("suppressions", "list", "-o", "json").stdout) == []
    assert "no sent message matches (try fewer filters)" in cli("messages", "list", "--delivery", "bounced").stderr


DESTRUCTIVE = ("rm", "purge", "cancel", "refund", "drop", "delete")  # and `circuit disable` (`creds disable` is undone by enable)


def test_every_destructive_command_takes_yes() -> None:
    import typer

    from connectorctl.cli.main import app

    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    found = []
    for path in all_command_paths():
        if path[-1:] and path[-1] in DESTRUCTIVE or path == ["circuit", "disable"]:
            command = root
            for name in path:
                command = command.get_command(ctx, name)
            found.append(path)
            assert any("--yes" in p.opts for p in command.params), f"{' '.join(path)} has no --yes"
    assert len(found) >= 8, found  # creds rm, circuit disable, logs purge, suppressions rm, storage rm, payments cancel/refund, ship cancel


def test_without_a_terminal_a_destructive_command_is_not_asked(cli: Callable[..., Any]) -> None:
    """Nobody can answer a question in a script or cron line: the command runs as told, without a prompt."""
    from datetime import timedelta

    insert_rows(cli_home_db(), [Row(timedelta(days=200)), Row(timedelta(days=1))])  # purge keeps the newest row
    assert cli("suppressions", "add", "gone@example.com").exit_code == 0
    assert json.loads(cli("logs", "purge", "-o", "json").stdout)["deleted"] == 1
    for command in (("circuit", "disable", "file"), ("suppressions", "rm", "gone@example.com")):
        result = cli(*command)
        assert result.exit_code == 0 and "[y/N]" not in result.output, (command, result.output)
    assert len(json.loads(cli("logs", "list", "-o", "json").stdout)["data"]) == 1
    assert json.loads(cli("circuit", "show", "file", "-o", "json").stdout)["state"] == "disabled"
    assert json.loads(cli("suppressions", "list", "-o", "json").stdout) == []


def cli_home_db() -> Path:
    return Path(os.environ["CONNECTORCTL_HOME"]) / "connectorctl.db"


def run_at_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """Run with stdin and stdout on a pseudo-terminal, typing ``answer`` at the prompt."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    seen = b""
    while b"[y/N]" not in seen:
        try:
            seen += os.read(master, 4096)
        except OSError:  # the command ended without asking
            raise AssertionError(f"no prompt: {seen.decode(errors='replace')}") from None
    os.write(master, answer.encode() + b"\n")
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        seen += data
    os.close(master)
    return proc.wait(timeout=60), ANSI.sub("", seen.decode())


def test_destructive_commands_ask_at_a_terminal(cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setattr("sys.stdin", io.StringIO("SG.secret-value-1234567890"))
    stored = cli("creds", "set", "sendgrid", "--stdin")
    assert stored.exit_code == 0, stored.stderr

    code, out = run_at_terminal(["creds", "rm", "sendgrid"], "n")
    assert code == 1 and "delete the stored credential for sendgrid? This cannot be undone. [y/N]" in out and "aborted: nothing changed" in out
    assert json.loads(cli("creds", "list", "-o", "json").stdout)[0]["service"] == "sendgrid"
    code, out = run_at_terminal(["circuit", "disable", "sendgrid"], "")
    assert code == 1 and json.loads(cli("circuit", "show", "sendgrid", "-o", "json").stdout)["state"] == "closed"
    code, out = run_at_terminal(["logs", "purge"], "no")
    assert code == 1 and "delete every log row older than 90 days? [y/N]" in out

    code, out = run_at_terminal(["creds", "rm", "sendgrid"], "y")
    assert code == 0 and "removed sendgrid" in out
    assert json.loads(cli("creds", "list", "-o", "json").stdout) == []
    assert cli("suppressions", "add", "bounced@example.com", "--note", "typo in the domain").exit_code == 0
    code, out = run_at_terminal(["suppressions", "rm", "bounced@example.com"], "n")
    assert code == 1 and "allow sends to bounced@example.com again? It was suppressed: manual at" in out
    assert len(json.loads(cli("suppressions", "list", "-o", "json").stdout)) == 1
    assert cli("circuit", "disable", "sendgrid", "--yes").exit_code == 0  # --yes answers in advance
