"""Where the master key comes from, in one documented order, with no plaintext fallback.

1. ``$CONNECTORCTL_MASTER_KEY`` (base64 of 32 bytes; ``..._PREVIOUS`` for rotation);
2. a key file: ``$CONNECTORCTL_MASTER_KEY_FILE`` or the ``master_key_file`` setting,
   refused when its mode is wider than 0600;
3. the OS keyring through ``keyring`` (service ``connectorctl``, one entry per
   installation, named by the installation id kept in the state database).

The first source that is *configured* is the only one used: a broken keyring
never silently falls through to something weaker.  Each source has two slots,
``current`` and ``previous``; ``rotate-key`` parks the old key in ``previous``
until the re-encryption has committed, so a crash at any point leaves every
row readable with one of the two.  Keyring lookups cost ~25 ms (a D-Bus session
each), so keys are cached per process.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, TypeVar

from connectorctl.credentials.crypto import MasterKey
from connectorctl.errors import ConfigurationError, CredentialUnreadableError

ENV_KEY = "CONNECTORCTL_MASTER_KEY"
ENV_PREVIOUS = "CONNECTORCTL_MASTER_KEY_PREVIOUS"
ENV_FILE = "CONNECTORCTL_MASTER_KEY_FILE"
KEYRING_SERVICE = "connectorctl"
T = TypeVar("T")
SLOTS = ("current", "previous")
NO_KEYRING_HINT = f"set {ENV_FILE}=/path/to/keyfile (mode 0600) or {ENV_KEY}; see docs/credentials.md"


class KeySource(Protocol):
    name: str
    writable: bool

    def load(self, slot: str) -> MasterKey | None: ...

    def store(self, slot: str, key: MasterKey) -> None: ...

    def clear(self, slot: str) -> None: ...


def _parse(text: str, where: str) -> MasterKey:
    try:
        return MasterKey.from_text(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"{where} is not a valid master key ({exc}); it must be base64 of 32 random bytes"
        ) from None


class EnvKeySource:
    """Read-only: the operator rotates by exporting the old key as ``..._PREVIOUS``."""

    writable = False

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.name = f"env:{ENV_KEY}"

    _parsed: dict[str, MasterKey] = {}

    def load(self, slot: str) -> MasterKey | None:
        var = ENV_KEY if slot == "current" else ENV_PREVIOUS
        value = self.env.get(var, "").strip()
        if not value:
            return None
        key = self._parsed.get(value)
        if key is None:
            key = self._parsed[value] = _parse(value, f"${var}")
        return key

    def store(self, slot: str, key: MasterKey) -> None:
        raise ConfigurationError(
            f"the master key comes from ${ENV_KEY} and cannot be written by connectorctl",
            hint=f"export the old key as ${ENV_PREVIOUS} and a new one as ${ENV_KEY}, then run `connectorctl creds "
            "rotate-key`",
        )

    def clear(self, slot: str) -> None:
        return None


class FileKeySource:
    """A key file (and ``<file>.previous``) that only its owner may read."""

    writable = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path}"

    def _slot_path(self, slot: str) -> Path:
        return self.path if slot == "current" else self.path.with_name(self.path.name + ".previous")

    def load(self, slot: str) -> MasterKey | None:
        path = self._slot_path(slot)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigurationError(f"cannot read master key file {path} ({exc.strerror})") from None
        if os.name == "posix" and st.st_mode & 0o077:
            raise ConfigurationError(
                f"master key file {path} has mode {stat.S_IMODE(st.st_mode):04o}, wider than 0600; run: chmod 600 "
                f"{path}"
            )
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"cannot read master key file {path} ({getattr(exc, 'strerror', None) or type(exc).__name__})"
            ) from None
        return _parse(text, f"master key file {path}")

    def store(self, slot: str, key: MasterKey) -> None:
        """Write atomically (temp file 0600 + fsync + rename) so a crash never leaves half a key."""
        path = self._slot_path(slot)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, (key.to_text() + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise ConfigurationError(f"cannot write master key file {path} ({exc.strerror})") from None

    def clear(self, slot: str) -> None:
        try:
            self._slot_path(slot).unlink()
        except FileNotFoundError:
            pass


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class KeyringKeySource:
    """The OS keyring (Secret Service, macOS Keychain, Windows Credential Locker)."""

    writable = True

    def __init__(self, installation_id: Callable[[], str]) -> None:
        self._installation_id = installation_id
        self.name = "keyring"

    def _username(self, slot: str) -> str:
        base = f"master-key/{self._installation_id()}"
        return base if slot == "current" else f"{base}/previous"

    def load(self, slot: str) -> MasterKey | None:
        value = _keyring_call(lambda kr: kr.get_password(KEYRING_SERVICE, self._username(slot)))
        return _parse(value, "the master key in the OS keyring") if value else None

    def store(self, slot: str, key: MasterKey) -> None:
        username = self._username(slot)
        _keyring_call(lambda kr: kr.set_password(KEYRING_SERVICE, username, key.to_text()))
        if _keyring_call(lambda kr: kr.get_password(KEYRING_SERVICE, username)) != key.to_text():
            raise ConfigurationError(f"the keyring backend did not keep the master key; {NO_KEYRING_HINT}")

    def clear(self, slot: str) -> None:
        def delete(kr: Any) -> None:
            from keyring.errors import PasswordDeleteError

            try:
                kr.delete_password(KEYRING_SERVICE, self._username(slot))
            except PasswordDeleteError:
                pass

        _keyring_call(delete)


def _keyring_call(fn: Callable[[Any], T]) -> T:
    """Run one keyring operation, turning every keyring failure into one actionable line."""
    import keyring
    from keyring.errors import KeyringError, KeyringLocked, NoKeyringError

    try:
        backend = keyring.get_keyring()
        _refuse_unsafe(backend)
        return fn(backend)
    except NoKeyringError:
        raise ConfigurationError(f"no OS keyring backend is available for the master key: {NO_KEYRING_HINT}") from None
    except KeyringLocked:
        raise CredentialUnreadableError(
            "the OS keyring is locked: unlock it (log in to the desktop session, or `gnome-keyring-daemon --unlock`) "
            f"or {NO_KEYRING_HINT}"
        ) from None
    except KeyringError as exc:
        raise CredentialUnreadableError(f"the OS keyring failed ({type(exc).__name__}): {NO_KEYRING_HINT}") from None
    except ModuleNotFoundError as exc:  # PYTHON_KEYRING_BACKEND names a module that is not installed
        raise ConfigurationError(
            f"keyring backend module {exc.name!r} is not installed (check $PYTHON_KEYRING_BACKEND)"
        ) from None


def _refuse_unsafe(backend: object) -> None:
    """A plaintext or null backend picked automatically would store the key unprotected (or nowhere)."""
    first = backend
    chained = getattr(type(backend), "backends", None)
    if type(backend).__name__ == "ChainerBackend" and chained:
        first = chained[0]
    kind = f"{type(first).__module__}.{type(first).__name__}"
    if kind == "keyring.backends.null.Keyring":
        raise ConfigurationError(f"the keyring backend {kind} stores nothing: {NO_KEYRING_HINT}")
    explicit = os.environ.get("PYTHON_KEYRING_BACKEND", "")
    if type(first).__name__ == "PlaintextKeyring" and explicit != kind:
        raise ConfigurationError(
            f"only a plaintext keyring ({kind}) is available, refusing to keep the master key there: {NO_KEYRING_HINT}"
        )


def select_source(
    master_key_file: str | None, installation_id: Callable[[], str], env: Mapping[str, str] | None = None
) -> KeySource:
    """The first configured source, in the documented order."""
    env = os.environ if env is None else env
    if env.get(ENV_KEY, "").strip():
        return EnvKeySource(env)
    file_setting = env.get(ENV_FILE, "").strip() or master_key_file
    if file_setting:
        return FileKeySource(Path(file_setting).expanduser())
    return KeyringKeySource(installation_id)


_CACHE: dict[tuple[str, str], MasterKey | None] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


class MasterKeys:
    """The current and previous master key of one source, cached per process."""

    def __init__(self, source: KeySource) -> None:
        self.source = source

    def _cache_key(self, slot: str) -> tuple[str, str]:
        name = self.source.name
        if isinstance(self.source, KeyringKeySource):
            name = f"keyring:{self.source._username(slot)}"
        return (name, slot)

    def load(self, slot: str, *, fresh: bool = False) -> MasterKey | None:
        if isinstance(self.source, EnvKeySource):
            return self.source.load(slot)
        key = self._cache_key(slot)
        with _CACHE_LOCK:
            if not fresh and key in _CACHE:
                return _CACHE[key]
        value = self.source.load(slot)
        with _CACHE_LOCK:
            _CACHE[key] = value
        return value

    def current(self, *, create: bool = False) -> MasterKey:
        key = self.load("current")
        if key is None and create:
            key = MasterKey.generate()
            self.store("current", key)
        if key is None:
            raise CredentialUnreadableError(
                f"no master key found in {self.source.name}",
                hint="run `connectorctl creds set SERVICE` to create one, or restore the key",
            )
        return key

    def for_id(self, key_id: str) -> MasterKey | None:
        """The key with this id; reloads once so another process's rotation is picked up."""
        for fresh in (False, True):
            for slot in SLOTS:
                key = self.load(slot, fresh=fresh)
                if key is not None and key.key_id == key_id:
                    return key
        return None

    def store(self, slot: str, key: MasterKey) -> None:
        self.source.store(slot, key)
        if not isinstance(self.source, EnvKeySource):
            with _CACHE_LOCK:
                _CACHE[self._cache_key(slot)] = key

    def clear(self, slot: str) -> None:
        self.source.clear(slot)
        with _CACHE_LOCK:
            _CACHE.pop(self._cache_key(slot), None)
