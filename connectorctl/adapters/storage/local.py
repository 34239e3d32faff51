"""The embedded default store: a folder under ``$CONNECTORCTL_HOME`` (or ``vendors.local.root``).

obstore's local store writes each object to a staging file and renames it
into place, so a reader never sees half an object.  A plain folder has no
place for a content type or user metadata, so they live in small JSON files
under the reserved ``.connectorctl/`` folder beside the objects, which listings
skip and keys may not use.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from connectorctl.adapters.declaration import Vendor
from connectorctl.adapters.storage.base import StorageAdapter
from connectorctl.errors import ConfigurationError
from connectorctl.settings import VendorSettings

RESERVED = ".connectorctl"


@dataclass(frozen=True)
class LocalOptions(VendorSettings):
    root: str | None = None  # the store's folder; null = $CONNECTORCTL_HOME/storage


class LocalStorageAdapter(StorageAdapter[LocalOptions]):
    sorted_listing = False  # a directory walk: the base sorts each listing

    @property
    def root(self) -> Path:
        configured = self.config.root
        return Path(configured).expanduser() if configured else self.context.settings.home / "storage"

    def build_store(self) -> Any:
        from obstore.store import LocalStore

        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the local store's folder {self.root}: {exc.strerror or exc}",
                hint="set vendors.local.root to a folder this user can write",
            ) from None
        return LocalStore(self.root)

    def location(self, key: str) -> str:
        return f"local:{key}"

    def hidden(self, key: str) -> bool:
        return key == RESERVED or key.startswith(RESERVED + "/")

    sends_attributes = False  # a plain file has nowhere to keep them

    def after_put(self, key: str, attributes: Mapping[str, str]) -> None:
        self._write_sidecar(key, attributes)

    def read_attributes(self, key: str, stored: Mapping[str, str]) -> Mapping[str, str]:
        try:
            return json.loads(self._sidecar(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def after_copy(self, source: str, target: str) -> None:
        self._write_sidecar(target, dict(self.read_attributes(source, {})))

    def after_delete(self, key: str) -> None:
        self._sidecar(key).unlink(missing_ok=True)

    def _sidecar(self, key: str) -> Path:
        return self.root / RESERVED / "meta" / f"{key}.json"

    def _write_sidecar(self, key: str, attributes: Mapping[str, str]) -> None:
        """Atomically (temporary file and rename), once the object itself is in place."""
        path = self._sidecar(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dict(attributes), f)
        os.replace(tmp, path)


VENDOR = Vendor(
    "local", "objects in a folder under $CONNECTORCTL_HOME", {"storage": LocalStorageAdapter}, LocalOptions, auth=()
)
