"""YAML + environment -> typed, immutable settings, remembering where each value came from.

Lookup order for the file: ``--config PATH``, ``$CONNECTORCTL_CONFIG``, then
``$CONNECTORCTL_HOME/config.yaml`` (absent is fine: defaults apply).  Every
mistake is reported as one line naming the file, the key and the line.  The
settings types live in :mod:`connectorctl.settings`; a ``vendors.<slug>``
section is read into the options class that vendor declares in its module.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import errno
import functools
import logging
import math
import os
import stat
import sys
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from connectorctl.errors import ConfigurationError
from connectorctl.settings import (
    DEFAULT_REDACT_FIELDS,
    MAX_PERIOD_S,
    CircuitBreakerSettings,
    InboundSettings,
    LoggingSettings,
    RateLimitSettings,
    RetrySettings,
    Settings,
    StatusSettings,
    VendorSettings,
    WebhookSettings,
)
from connectorctl.yaml_limits import check_depth, check_expansion, read_config_text, shown

__all__ = [
    "DEFAULT_REDACT_FIELDS",
    "CircuitBreakerSettings",
    "InboundSettings",
    "LoggingSettings",
    "RateLimitSettings",
    "RetrySettings",
    "Settings",
    "StatusSettings",
    "VendorSettings",
    "WebhookSettings",
    "flatten",
    "load_settings",
    "resolve_config_path",
    "source_of",
]
log = logging.getLogger("connectorctl.config")
MAX_STALENESS_S = 300  # a circuit opened on one host must reach the others within minutes at most


# Keys of the YAML file that are not fields of Settings or are typed specially.
_FILE_ONLY = {"database": str, "email_vendor": "chain", "sms_vendor": "chain", "payment_vendor": "chain"}
ENV_OVERRIDES = {
    "CONNECTOR_EMAIL_VENDOR": "email_vendor",
    "CONNECTOR_SMS_VENDOR": "sms_vendor",
    "CONNECTOR_PAYMENT_VENDOR": "payment_vendor",
    "CONNECTOR_LOG_RETENTION_DAYS": "log_retention_days",
    "CONNECTOR_CIRCUIT_FAILURE_THRESHOLD": "circuit_breaker.failure_threshold",
    "CONNECTOR_CIRCUIT_TIMEOUT": "circuit_breaker.timeout_seconds",
}


def default_home() -> Path:
    if env := os.environ.get("CONNECTORCTL_HOME"):
        return local_path(env, "env:CONNECTORCTL_HOME", folder=True)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "connectorctl"


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> tuple[Path | None, bool]:
    """Return the config file to read and whether it was asked for explicitly."""
    if explicit:
        return local_path(str(explicit), "--config"), True
    if env := os.environ.get("CONNECTORCTL_CONFIG"):
        return local_path(env, "env:CONNECTORCTL_CONFIG"), True
    return default_home() / "config.yaml", False


def local_path(value: str, where: str, *, folder: bool = False) -> Path:
    """A path setting, refused now when nothing could ever be stored there.

    Found at first use instead, the same mistake was an ``internal_error``, or (``audit_spool``)
    log rows lost at the very moment the database failed.  A path not there yet is fine.
    """

    def bad(message: str) -> typing.NoReturn:
        raise ConfigurationError(f"{where}: {message}")

    if "\0" in value:
        bad("the path contains a NUL character")
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # ~name of a user this system does not know
        bad(f"cannot expand {shown(value.split('/')[0])}: no such user")
    try:
        is_folder = stat.S_ISDIR(os.stat(path).st_mode)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            bad("the path is too long")
        if exc.errno == errno.ENOTDIR:
            bad("a part of the path is a file, not a folder")
        return path  # not there yet (created on first use), or unreadable (reported where it is used)
    if is_folder != folder:
        bad("is a file, not a folder" if folder else "is a folder, not a file")
    return path


class _Reader:
    """Turns a YAML node tree into dataclass instances, with file:line errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sources: dict[str, str] = {}

    def fail(self, key: str, node: Any, message: str) -> typing.NoReturn:
        where = f"{self.path}:{node.start_mark.line + 1}" if node is not None else str(self.path)
        raise ConfigurationError(f"{where}: {key}: {message}")

    def mapping(self, node: Any, key: str) -> dict[str, Any]:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            self.fail(key or "(top level)", node, "expected a mapping")
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if name in result:
                self.fail(_join(key, name), key_node, "duplicate key")
            result[name] = (key_node, value_node)
        return result

    def scalar(self, node: Any, key: str) -> Any:
        import yaml

        loader = yaml.SafeLoader("")
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.fail(key, node, f"cannot read value ({getattr(exc, 'problem', None) or exc})")

    def build(
        self, cls: type, node: Any, prefix: str, elsewhere: typing.Callable[[str], str | None] | None = None
    ) -> Any:
        """The keyword arguments of ``cls`` from a mapping node.

        ``elsewhere(key)`` names the vendor whose options own a key this class
        lacks: such a key is ignored with a warning (a config that listed every
        vendor's keys in every section, as older versions allowed, keeps working).
        """
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name, (key_node, value_node) in self.mapping(node, prefix).items():
            key = _join(prefix, name)
            if name not in fields or name in ("sources", "config_path", "home"):
                owner = elsewhere(name) if elsewhere is not None and name not in fields else None
                if owner is not None:
                    log.warning(
                        "%s:%d: %s: a setting of %s, ignored here", self.path, key_node.start_mark.line + 1, key, owner
                    )
                    continue
                self.fail(
                    key,
                    key_node,
                    f"unknown key (known: {', '.join(sorted(fields - {'sources', 'config_path', 'home'}))})",
                )
            values[name] = self.convert(hints[name], value_node, key)
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in values
        ]
        if required and prefix:  # a nested section (the loader fills the top level's own); else a TypeError
            self.fail(prefix, node, f"missing key {', '.join(required)}")
        return values

    def vendor(self, slug: str, slug_node: Any, node: Any) -> VendorSettings:
        """A ``vendors.<slug>`` section, read into the options class the vendor declares."""
        from connectorctl.adapters.catalog import declaration, known_slugs, owner_of_option

        vendor = declaration(slug)
        if vendor is None:
            self.fail(f"vendors.{slug}", slug_node, f"unknown vendor (known: {', '.join(known_slugs())})")
        if self.scalar(node, slug) is None:
            return vendor.options()
        return vendor.options(**self.build(vendor.options, node, f"vendors.{slug}", owner_of_option))

    def convert(self, hint: Any, node: Any, key: str) -> Any:
        origin = typing.get_origin(hint)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return hint(**self.build(hint, node, key))
        if origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(hint) if a is not type(None)]
            if self.scalar(node, key) is None:
                return None
            return self.convert(options[0], node, key)
        if origin is tuple:
            import yaml

            item_hint = typing.get_args(hint)[0]
            if not isinstance(node, yaml.SequenceNode):
                self.fail(key, node, "expected a list")
            return tuple(self.convert(item_hint, item, f"{key}[{i}]") for i, item in enumerate(node.value))
        if origin in (collections.abc.Mapping, dict):
            value_hint = typing.get_args(hint)[1]
            return {
                name: self.convert(value_hint, value_node, _join(key, name))
                for name, (_, value_node) in self.mapping(node, key).items()
            }
        value = self.scalar(node, key)
        self.sources[key] = f"{self.path}:{node.start_mark.line + 1}"
        return coerce(hint, value, lambda msg: self.fail(key, node, msg))


def coerce(hint: Any, value: Any, fail: typing.Callable[[str], typing.NoReturn]) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        fail(f"expected true or false, got {shown(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > 2**63 - 1:  # would not even fit an SQLite integer
                fail(f"integer out of range: {value}")
            return value
        fail(f"expected an integer, got {shown(value)}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)  # nan/inf would defeat every comparison and are not valid JSON
        fail(f"expected a number, got {shown(value)}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        fail(f"expected a string, got {shown(value)}")
    return value


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _chain(value: Any, channel: str, fail: typing.Callable[[str], typing.NoReturn]) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        fail("expected a vendor name or a list of vendor names")
    if not items:
        fail("expected at least one vendor")
    from connectorctl.adapters.catalog import declaration, vendors_for

    for item in items:
        vendor = declaration(item)
        if vendor is None or channel not in vendor.channels:
            fail(f"unknown {channel} vendor {item!r} (known: {', '.join(vendors_for(channel))})")
    if len(set(items)) != len(items):
        fail("a vendor appears twice in the chain")
    return tuple(items)


def load_settings(
    explicit_path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the config file (if any) and the environment into :class:`Settings`."""
    import yaml

    env = os.environ if environ is None else environ
    path, explicit = resolve_config_path(explicit_path)
    home = default_home()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_path: Path | None = None
    if path is not None and (explicit or os.path.exists(path)):
        try:
            text = read_config_text(path)
        except FileNotFoundError:
            raise ConfigurationError(
                f"{path}: config file not found", hint="run `connectorctl init` to write one"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{path}: cannot read config file ({exc.__class__.__name__})") from None
        config_path = path
        reader = _Reader(path)
        try:
            check_depth(text, path)
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise ConfigurationError(f"{path}{line}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
        check_expansion(root, path)
        if root is not None:
            entries = reader.mapping(root, "")
            for name, (key_node, value_node) in entries.items():
                if name == "database":
                    raw = reader.scalar(value_node, name)
                    values[name] = (
                        coerce(str, raw, functools.partial(reader.fail, name, value_node)) if raw is not None else None
                    )
                    reader.sources[name] = f"{path}:{value_node.start_mark.line + 1}"
                elif name in ("email_vendor", "sms_vendor", "payment_vendor"):
                    channel = name.split("_")[0]
                    raw = reader.scalar(value_node, name)
                    values[name] = _chain(raw, channel, functools.partial(reader.fail, name, value_node))
                    reader.sources[name] = f"{path}:{value_node.start_mark.line + 1}"
                elif name == "vendors":
                    vendors = {
                        slug: reader.vendor(slug, slug_node, vendor_node)
                        for slug, (slug_node, vendor_node) in reader.mapping(value_node, name).items()
                    }
                    values[name] = vendors
                else:
                    values.update(reader.build(Settings, _single(root, key_node, value_node), ""))
            sources.update(reader.sources)
    _apply_env(values, sources, env)
    from connectorctl.envcheck import warn_unknown_variables

    warn_unknown_variables(env, ENV_OVERRIDES)
    database = values.pop("database", None)
    if env.get("CONNECTORCTL_DATABASE_URL"):
        database = env["CONNECTORCTL_DATABASE_URL"]
        sources["database"] = "env:CONNECTORCTL_DATABASE_URL"
    db_path = _database(database, sources["database"]) if database else home / "connectorctl.db"
    if not database:
        sources.setdefault("database", "default ($CONNECTORCTL_HOME)")
    try:
        settings = Settings(home=home, database=db_path, config_path=config_path, sources=sources, **values)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{config_path or 'config'}: {exc}") from None
    _check(settings)  # with the sources, so a bad value is reported with its file and line
    return settings


def _database(value: str, where: str) -> Path | str:
    """A ``postgresql://`` URL stays a URL (shared state of many hosts); anything else is a SQLite file."""
    from connectorctl.store.db import is_database_url

    if is_database_url(value):
        from connectorctl.store.postgres import check_url

        check_url(value, ConfigurationError, f"{where}: database")
        return value
    if "://" in value:
        raise ConfigurationError(
            f"database: unsupported URL scheme in {value.split('://')[0]}://...",
            hint="use a file path (SQLite) or postgresql://user@host:port/dbname",
        )
    return local_path(value, f"{where}: database")


def _single(root: Any, key_node: Any, value_node: Any) -> Any:
    import yaml

    return yaml.MappingNode(root.tag, [(key_node, value_node)], root.start_mark, root.end_mark)


def _apply_env(values: dict[str, Any], sources: dict[str, str], env: Mapping[str, str]) -> None:
    for var, key in ENV_OVERRIDES.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue

        def fail(message: str, var: str = var) -> typing.NoReturn:
            raise ConfigurationError(f"environment {var}: {message}")

        if key in ("email_vendor", "sms_vendor", "payment_vendor"):
            values[key] = _chain(raw, key.split("_")[0], fail)
        elif key == "log_retention_days":
            values[key] = _parse_number(raw, int, fail)
        else:
            section, name = key.split(".")
            current = values.get(section, CircuitBreakerSettings())
            hint = typing.get_type_hints(CircuitBreakerSettings)[name]
            values[section] = dataclasses.replace(current, **{name: _parse_number(raw, hint, fail)})
        sources[key] = f"env:{var}"


def _parse_number(raw: str, kind: type, fail: typing.Callable[[str], typing.NoReturn]) -> Any:
    try:
        return coerce(kind, kind(raw), fail)
    except ValueError:
        fail(f"expected {'an integer' if kind is int else 'a number'}, got {raw!r}")


def _check(settings: Settings) -> None:
    def bad(key: str, message: str) -> typing.NoReturn:
        where = settings.sources.get(key) or str(settings.config_path or "config")
        raise ConfigurationError(f"{where}: {key}: {message}")

    cb, rp = settings.circuit_breaker, settings.retry_policy
    if cb.failure_threshold < 1:
        bad("circuit_breaker.failure_threshold", "must be at least 1")
    if cb.timeout_seconds <= 0:
        bad("circuit_breaker.timeout_seconds", "must be positive")
    if cb.failure_rate_threshold is not None and not 0 < cb.failure_rate_threshold <= 1:
        bad("circuit_breaker.failure_rate_threshold", "must be between 0 and 1")
    if rp.max_attempts < 1:
        bad("retry_policy.max_attempts", "must be at least 1")
    if rp.multiplier < 1:
        bad("retry_policy.multiplier", "must be at least 1.0")
    for name in ("initial_delay_ms", "max_delay_ms", "total_budget_ms"):
        if getattr(rp, name) < 0:  # a negative delay used to crash the retry sleep mid-send
            bad(f"retry_policy.{name}", "must be 0 or more")
    if cb.probe_lease_seconds <= 0 or cb.window_seconds <= 0:
        bad("circuit_breaker", "probe_lease_seconds and window_seconds must be positive")
    if not 0 <= cb.max_staleness_seconds <= MAX_STALENESS_S:  # nan fails too
        bad("circuit_breaker.max_staleness_seconds", f"must be between 0 and {MAX_STALENESS_S} seconds")
    for key in ("audit_spool", "master_key_file"):
        if value := getattr(settings, key):
            local_path(value, f"{settings.sources.get(key) or settings.config_path}: {key}")
    ob = settings.outbox
    if (
        min(ob.lease_seconds, ob.backoff_initial_seconds, ob.backoff_max_seconds, ob.max_age_hours, ob.poll_seconds)
        <= 0
    ):
        bad("outbox", "lease_seconds, backoff_*_seconds, max_age_hours and poll_seconds must be positive")
    if ob.check_delay_seconds < 0:
        bad("outbox.check_delay_seconds", "must be 0 or more")
    st = settings.status
    if not 1 <= st.window_minutes <= MAX_PERIOD_S // 60:
        bad("status.window_minutes", f"must be between 1 and {MAX_PERIOD_S // 60}")
    # Any period longer than a century is a typo, and past year 9999 it cannot even be stored or shown.
    periods = [
        (f"circuit_breaker.{k}", getattr(cb, k)) for k in ("timeout_seconds", "window_seconds", "probe_lease_seconds")
    ]
    periods += [
        (f"retry_policy.{k}", getattr(rp, k) / 1000) for k in ("initial_delay_ms", "max_delay_ms", "total_budget_ms")
    ]
    periods += [
        (f"outbox.{k}", getattr(ob, k))
        for k in ("lease_seconds", "backoff_max_seconds", "poll_seconds", "check_delay_seconds")
    ]
    periods.append(("outbox.max_age_hours", ob.max_age_hours * 3600))
    for service, hook in settings.webhooks.items():
        periods += [
            (f"webhooks.{service}.{k}", getattr(hook, k)) for k in ("tolerance_seconds", "replay_window_seconds")
        ]
    for key, seconds in periods:
        if seconds > MAX_PERIOD_S:
            bad(key, f"is longer than {MAX_PERIOD_S // 86400} days")
    if not 0 <= st.degraded_min_success_rate <= st.healthy_min_success_rate <= 100:
        bad("status", "need 0 <= degraded_min_success_rate <= healthy_min_success_rate <= 100 (percentages)")
    if settings.storage_vendor != "local":  # the default needs no import
        from connectorctl.adapters.catalog import declaration, vendors_for

        store = declaration(settings.storage_vendor)
        if store is None or "storage" not in store.channels:
            bad(
                "storage_vendor",
                f"unknown storage vendor {settings.storage_vendor!r} (known: {', '.join(vendors_for('storage'))})",
            )
    if settings.shipping_vendor is not None:
        from connectorctl.adapters.catalog import vendors_for

        if settings.shipping_vendor not in vendors_for("shipping"):
            bad(
                "shipping_vendor",
                f"unknown shipping vendor {settings.shipping_vendor!r} (known: {', '.join(vendors_for('shipping'))})",
            )
    if settings.logging.writer not in ("background", "sync"):
        bad("logging.writer", "must be 'background' or 'sync'")
    if settings.log_retention_days < 1:
        bad("log_retention_days", "must be at least 1")
    for slug, vendor in settings.vendors.items():
        for key, message in vendor.problems():
            bad(f"vendors.{slug}.{key}", message)
    if settings.webhooks:
        from connectorctl.webhooks.registry import SCHEMES

        for service, hook in settings.webhooks.items():
            if hook.scheme not in SCHEMES:
                bad(f"webhooks.{service}.scheme", f"expected one of {', '.join(SCHEMES)}, got {hook.scheme!r}")
            if not hook.secret_env and not hook.secrets_from_creds:
                bad(f"webhooks.{service}", "set secret_env (a list of env vars) or secrets_from_creds")
            if hook.allow_sha1 and hook.scheme != "github":
                bad(f"webhooks.{service}.allow_sha1", "only the github scheme has a legacy SHA-1 header")
            if hook.tolerance_seconds < 0 or hook.replay_window_seconds <= 0 or hook.max_body_bytes < 1:
                bad(
                    f"webhooks.{service}",
                    "tolerance_seconds, replay_window_seconds and max_body_bytes must be positive",
                )
    for service, inbound in settings.inbound.items():
        from connectorctl.inbound.parsers import FORMATS
        from connectorctl.webhooks.registry import SCHEMES

        if (inbound.format or service) not in FORMATS:
            bad(f"inbound.{service}.format", f"expected one of {', '.join(FORMATS)}, got {inbound.format or service!r}")
        if inbound.scheme not in (*SCHEMES, "none"):
            bad(f"inbound.{service}.scheme", f"expected none or one of {', '.join(SCHEMES)}, got {inbound.scheme!r}")
        if inbound.scheme != "none" and not inbound.secret_env and not inbound.secrets_from_creds:
            bad(f"inbound.{service}", "set secret_env (a list of env vars) or secrets_from_creds, or scheme: none")


def flatten(settings: Settings) -> dict[str, Any]:
    """Effective values keyed by dotted path, for ``config show``."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                if f.name != "sources":
                    walk(_join(prefix, f.name), getattr(value, f.name))
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(_join(prefix, str(k)), v)
        elif (
            prefix.startswith("vendors.")
            and ".credentials." in prefix
            and not (isinstance(value, str) and value.startswith("env:"))
        ):
            out[prefix] = "***"  # a literal secret (refused when used) must not be printed either
        elif prefix == "database" and isinstance(value, str):
            from connectorctl.store.db import redacted_url

            out[prefix] = redacted_url(value)  # a postgresql:// URL may carry a password
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            out[prefix] = [dataclasses.asdict(v) for v in value]
        elif isinstance(value, Path):
            out[prefix] = str(value)
        elif isinstance(value, tuple):
            out[prefix] = list(value)
        else:
            out[prefix] = value

    walk("", settings)
    return out


def source_of(settings: Settings, key: str) -> str:
    if key in settings.sources:
        return settings.sources[key]
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in settings.sources:
            return settings.sources[prefix]
    if key == "home":
        return "env:CONNECTORCTL_HOME" if os.environ.get("CONNECTORCTL_HOME") else "default (per-user data dir)"
    return "default"
