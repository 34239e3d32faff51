"""``connectorctl storage ...`` end to end: in-process for the local store, real
processes against the moto S3 server for config, credentials and interrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import ROOT, write_config
from tests.storage.conftest import KEY_ID, SECRET
from tests.storage.s3_server import FaultyProxy, MotoS3


def test_put_ls_stat_get_rm_on_the_default_local_store(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "invoice.pdf"
    source.write_bytes(b"%PDF-1.7 invoice 42")
    put = cli("storage", "put", str(source), "invoices/42.pdf", "--meta", "order-id=42", "-o", "json")
    assert put.exit_code == 0, put.stderr
    assert json.loads(put.stdout)["content_type"] == "application/pdf"
    listed = cli("storage", "ls", "invoices/", "-o", "jsonl")
    assert [json.loads(line)["key"] for line in listed.stdout.splitlines()] == ["invoices/42.pdf"]
    stat = cli("storage", "stat", "invoices/42.pdf", "--json")
    assert json.loads(stat.stdout)["metadata"] == {"order-id": "42"}
    out = cli("storage", "get", "invoices/42.pdf", "-")
    assert out.stdout == "%PDF-1.7 invoice 42" and "19 bytes" in out.stderr
    saved = tmp_path / "back"
    saved.mkdir()
    assert cli("storage", "get", "invoices/42.pdf", str(saved) + "/").exit_code == 0
    assert (saved / "42.pdf").read_bytes() == source.read_bytes()
    assert cli("storage", "rm", "invoices/42.pdf", "--yes").exit_code == 0
    assert cli("storage", "ls", "-o", "json").stdout.strip().startswith('{\n  "objects": []')


def test_ls_pages_with_limit_and_after(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        (tmp_path / f"{n}.txt").write_text(str(n))
        assert cli("storage", "put", str(tmp_path / f"{n}.txt"), f"exports/{n}.txt").exit_code == 0
    first = json.loads(cli("storage", "ls", "exports/", "--limit", "2", "-o", "json").stdout)
    assert [o["key"] for o in first["objects"]] == ["exports/0.txt", "exports/1.txt"] and first["next_token"] == "exports/1.txt"
    second = cli("storage", "ls", "exports/", "--limit", "2", "--after", first["next_token"])
    assert "exports/2.txt" in second.stdout and "--after exports/3.txt" in second.stderr


@pytest.mark.parametrize("args, message", [
    (("storage", "get", "missing.txt", "-"), "[file_not_found]"),
    (("storage", "put", "/no/such/file", "k"), "no such file"),
    (("storage", "put", "-", "../up"), "segment"),
    (("storage", "url", "x", "--expires", "soon"), "--expires"),
    (("storage", "ls", "--store", "ftp"), "unknown storage vendor"),
    (("storage", "put", "-", "k", "--meta", "novalue"), "NAME=VALUE"),
])
def test_bad_input_is_one_line_and_a_clean_exit_code(cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.exit_code in (1, 2) and message in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_url_on_the_local_store_is_an_explicit_refusal(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("storage", "url", "x.txt")
    assert result.exit_code == 1 and "[unsupported_feature]" in result.stderr


def _s3_home(home: Path, moto: MotoS3 | FaultyProxy, bucket: str) -> dict[str, str]:
    write_config(home, f"""
storage_vendor: s3
vendors:
  s3:
    base_url: {moto.url}
    bucket: {bucket}
    region: us-east-1
    credentials: {{access_key_id: "env:TEST_S3_KEY_ID", secret_access_key: "env:TEST_S3_SECRET"}}
""")
    return {"CONNECTORCTL_HOME": str(home), "TEST_S3_KEY_ID": KEY_ID, "TEST_S3_SECRET": SECRET}


def test_s3_from_config_and_env_credentials_with_a_presigned_url(home: Path, moto: MotoS3, bucket: str, tmp_path: Path,
                                                                 cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    for name, value in _s3_home(home, moto, bucket).items():
        monkeypatch.setenv(name, value)
    (tmp_path / "r.csv").write_text("a,b\n")
    put = cli("storage", "put", str(tmp_path / "r.csv"), "reports/r.csv")
    assert put.exit_code == 0, put.stderr
    assert moto.keys(bucket) == ["reports/r.csv"]
    url = cli("storage", "url", "reports/r.csv", "--expires", "10m")
    assert url.exit_code == 0 and httpx.get(url.stdout.strip()).text == "a,b\n"
    logs = cli("logs", "list", "--service", "s3", "-o", "json")
    assert SECRET not in logs.stdout + url.stderr and "X-Amz-Signature" not in logs.stdout


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_upload_killed_midway_leaves_no_object(home: Path, moto: MotoS3, bucket: str, sig: int) -> None:
    """A producer that never finishes feeds the upload; the CLI is killed once parts are in flight."""
    serial = FaultyProxy(moto.url, one_at_a_time=True)
    env = {**os.environ, **_s3_home(home, serial, bucket), "PYTHONPATH": str(ROOT)}
    producer = subprocess.Popen([sys.executable, "-c", "import sys,time\nb=b'x'*(1<<20)\nwhile True:\n sys.stdout.buffer.write(b); time.sleep(0.01)"],
                                stdout=subprocess.PIPE)
    upload = subprocess.Popen([sys.executable, "-m", "connectorctl", "storage", "put", "-", "exports/never.bin"],
                              stdin=producer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not moto.pending_uploads(bucket) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert moto.pending_uploads(bucket) == ["exports/never.bin"]
        time.sleep(0.5)
        upload.send_signal(sig)
        upload.wait(timeout=30)
    finally:
        producer.kill()
        upload.kill()
        serial.close()
    assert moto.keys(bucket) == []
    if sig != signal.SIGKILL:  # a process that is told to stop aborts the multipart upload
        assert upload.returncode == 130 and b"interrupted" in upload.stderr.read()
        assert moto.pending_uploads(bucket) == []


def _on_a_terminal(args: list[str], home: Path, answer: bytes = b"") -> tuple[int, str]:
    """Run the CLI with stdin and stderr on a pseudo-terminal; returns the exit code and what the terminal showed."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "CONNECTORCTL_HOME": str(home), "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "100"}
    child = subprocess.Popen([sys.executable, "-m", "connectorctl", *args], stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    if answer:
        os.write(master, answer)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        shown += chunk
    child.wait(timeout=60)
    os.close(master)
    return child.returncode, shown.decode("utf-8", "replace")


@pytest.mark.slow
def test_rm_asks_on_a_terminal_and_keeps_the_object_on_no(home: Path) -> None:
    (home / "storage" / "keep").mkdir(parents=True)
    (home / "storage" / "keep" / "me.txt").write_text("precious")
    code, shown = _on_a_terminal(["storage", "rm", "keep/me.txt"], home, answer=b"n\n")
    assert code != 0 and "delete keep/me.txt (8 bytes) from local?" in shown
    assert (home / "storage" / "keep" / "me.txt").exists()


@pytest.mark.slow
def test_a_large_transfer_shows_progress_on_a_terminal(home: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    code, shown = _on_a_terminal(["storage", "put", str(big), "big.bin"], home)
    assert code == 0 and "put big.bin" in shown and "MB" in shown
