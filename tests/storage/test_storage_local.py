"""The local store (the embedded default) against the shared storage contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectorctl.adapters.storage.local import LocalOptions
from connectorctl.errors import ConfigurationError, InvalidInputError
from connectorctl.gateway import Connector
from tests.conftest import run_cli_process
from tests.storage.conftest import storage_settings
from tests.storage.storage_contract import StorageContract


class TestLocalStore(StorageContract):
    @pytest.fixture
    def connector(self, home: Path) -> Connector:
        with Connector(storage_settings(home, "local")) as connector:
            yield connector  # type: ignore[misc]

    def stored_keys(self, connector: Connector) -> list[str]:
        root = connector.settings.home / "storage"
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".connectorctl" not in p.parts)


def test_the_default_store_is_a_folder_under_home(home: Path) -> None:
    with Connector(storage_settings(home, "local")) as connector:
        connector.storage().put("a/b.txt", b"hi")
    assert (home / "storage" / "a" / "b.txt").read_bytes() == b"hi"


def test_a_configured_root_is_used(home: Path, tmp_path: Path) -> None:
    root = tmp_path / "erp-files"
    with Connector(storage_settings(home, "local", LocalOptions(root=str(root)))) as connector:
        connector.storage().put("x.txt", b"x")
    assert (root / "x.txt").read_bytes() == b"x"


def test_a_root_that_cannot_be_a_folder_is_a_configuration_error(home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with Connector(storage_settings(home, "local", LocalOptions(root=str(blocker / "store")))) as connector:
        with pytest.raises(ConfigurationError, match="cannot create the local store's folder"):
            connector.storage().put("x.txt", b"x")


def test_a_pipe_on_stdin_is_uploaded(home: Path) -> None:
    put = run_cli_process("storage", "put", "-", "piped/in.txt", input="from a pipe\n", env={"CONNECTORCTL_HOME": str(home)})
    assert put.returncode == 0, put.stderr
    assert (home / "storage" / "piped" / "in.txt").read_text() == "from a pipe\n"


def test_the_metadata_folder_is_reserved(home: Path) -> None:
    with Connector(storage_settings(home, "local")) as connector:
        with pytest.raises(InvalidInputError):
            connector.storage().put(".connectorctl/meta/x.json", b"{}")
