"""``connectorctl creds``: store, inspect, rotate and test vendor credentials.

Secrets never come from argv (they would land in shell history and ``ps``):
they are read from a hidden prompt or, for scripts, from stdin with
``--stdin``.  Nothing here ever prints a secret: ``list`` and ``show`` print a
masked hint such as ``SG.…f3a9``.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any, List, Optional

import typer

from connectorctl.cli.output import (
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    ServiceArgument,
    ServiceOption,
    YesOption,
    fmt,
    grid,
    human_time,
    kv_table,
    render,
    required_service,
    show,
    state,
    warn,
)
from connectorctl.cli.plain import CommandGroup

if TYPE_CHECKING:
    from connectorctl.adapters.declaration import AuthScheme
    from connectorctl.credentials.provider import StoreCredentialProvider
    from connectorctl.credentials.store import CredentialStore, StoredRow

app = CommandGroup(help="Store, inspect, rotate and test vendor credentials (encrypted; master key in the OS keyring).")


_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TenantOption = typer.Option(None, "--tenant", "-t", help="Tenant id (default: the global credential).", metavar="ID")


def _service(service: str) -> str:
    from connectorctl.adapters.catalog import VENDORS
    from connectorctl.errors import InvalidInputError

    if not _SLUG.match(service):
        raise InvalidInputError(f"{service!r} is not a vendor slug (lowercase letters, digits, - and _)")
    if service not in VENDORS:
        warn(f"{service} is not a known vendor slug; storing it anyway")
    return service


def _scheme(service: str, method: Optional[str]) -> "AuthScheme":
    """The fields to store: the vendor's own declaration, or the usual ones for a slug nobody declared."""
    from connectorctl.adapters.catalog import declaration
    from connectorctl.adapters.declaration import GENERIC_SCHEMES
    from connectorctl.errors import InvalidInputError

    by_name = {m.value: s for m, s in GENERIC_SCHEMES.items()}
    if method is not None and method not in by_name:
        raise InvalidInputError(f"auth method {method!r} is not one of {', '.join(by_name)}")
    vendor = declaration(service)
    if vendor is not None:
        if not vendor.auth:
            raise InvalidInputError(f"{service} takes no credentials")
        scheme = vendor.scheme(method)
        if scheme is None:
            raise InvalidInputError(
                f"{service} takes {', '.join(s.method.value for s in vendor.auth)} credentials, not {method}"
            )
        return scheme
    return by_name[method or "api_key"]


def _provider(ctx: typer.Context) -> "StoreCredentialProvider":
    from connectorctl.credentials.provider import store_provider

    return store_provider(state(ctx).connector().credentials)


def _store(ctx: typer.Context) -> "CredentialStore":
    return _provider(ctx).store


def _row(ctx: typer.Context, service: str, tenant: Optional[str]) -> "StoredRow":
    from connectorctl.credentials.provider import set_command
    from connectorctl.errors import CredentialNotFoundError

    row = _store(ctx).find(service, tenant)
    if row is None:
        where = f" for tenant {tenant}" if tenant else ""
        raise CredentialNotFoundError(
            f"no credentials stored for {service}{where}", service=service, hint=set_command(service, tenant)
        )
    return row


def _readable(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    def one(key: str, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        if key.endswith("_at") and isinstance(value, str):
            return human_time(value) + " UTC"
        return value

    return [(k, one(k, v)) for k, v in summary.items()]


def _read_secrets(service: str, fields: tuple[str, ...], from_stdin: bool, help: str = "") -> dict[str, str]:
    """Values from stdin (one value, or NAME=VALUE lines) or a hidden prompt; never echoed."""
    from connectorctl.errors import InvalidInputError

    if from_stdin:
        from connectorctl.cli.output import read_stdin_text

        text = read_stdin_text("the secret")
        if len(fields) == 1:
            values = {fields[0]: text.rstrip("\r\n")}
        else:
            values = {}
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                name, sep, value = line.partition("=")
                if not sep or name.strip() not in fields:
                    raise InvalidInputError(f"stdin line {n} is not NAME=VALUE with NAME one of {', '.join(fields)}")
                values[name.strip()] = value
    else:
        if not sys.stdin.isatty():
            raise InvalidInputError("no terminal to prompt for the secret on: pipe it in and pass --stdin")
        import getpass

        if help:
            sys.stderr.write(f"{service}: {help}\n")
        values = {name: getpass.getpass(f"{name} for {service} (hidden): ") for name in fields}
    for name in fields:
        if not values.get(name):
            raise InvalidInputError(f"no value given for {name}")
        if values[name] != values[name].strip() or "\n" in values[name]:
            raise InvalidInputError(f"the value for {name} has leading/trailing whitespace or a line break")
    return values


def _expiry(text: Optional[str]) -> Optional[float]:
    from datetime import datetime, timezone

    from connectorctl.errors import InvalidInputError

    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"--expires-at {text!r}: expected an ISO 8601 time such as 2026-12-31T23:59:00Z"
        ) from None
    epoch = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
    if not 0 <= epoch < 253402300800:  # 1970 up to 9999-12-31 UTC: stored as a 4-digit-year ISO string and read back
        raise InvalidInputError(f"--expires-at {text!r}: must be between 1970-01-01 and 9999-12-31 (UTC)")
    return epoch


@app.command("set")
def creds_set(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    tenant: Optional[str] = TenantOption,
    auth_method: Optional[str] = typer.Option(
        None,
        "--auth-method",
        "-m",
        help="api_key, bearer_token, basic_auth, oauth2 or hmac, as the vendor accepts "
        "(default: vendors.<slug>.auth_method, else the vendor's usual method).",
        metavar="METHOD",
    ),
    field: List[str] = typer.Option(
        [], "--field", "-f", help="Field to store (repeatable); default: the method's fields.", metavar="NAME"
    ),
    expires_at: Optional[str] = typer.Option(
        None, "--expires-at", help="ISO 8601 expiry time (UTC if no offset).", metavar="WHEN"
    ),
    from_stdin: bool = typer.Option(
        False, "--stdin", help="Read the value (or NAME=VALUE lines) from stdin instead of prompting."
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Store (or replace) a credential; the secret is prompted for or read from stdin, never from argv."""
    from connectorctl.errors import InvalidInputError

    service = _service(required_service(service, service_opt))
    connector = state(ctx).connector()
    scheme = _scheme(service, auth_method or connector.settings.vendor(service).auth_method)
    method, allowed = scheme.method.value, scheme.allowed
    names = tuple(dict.fromkeys(field)) or scheme.fields
    unknown = sorted(set(names) - allowed)
    if unknown:
        raise InvalidInputError(f"{method} has no field {', '.join(unknown)} (fields: {', '.join(sorted(allowed))})")
    if method == "oauth2" and "access_token" not in names and not {"client_id", "client_secret"} <= set(names):
        raise InvalidInputError("oauth2 needs --field access_token, or client_id and client_secret")
    if method == "basic_auth" and set(names) != allowed:
        raise InvalidInputError("basic_auth needs both password and username")
    if method == "hmac" and "secret" not in names:
        raise InvalidInputError("hmac needs --field secret (key_id is optional, e.g. for a webhook signing secret)")
    if tenant is not None and not tenant.strip():
        raise InvalidInputError("--tenant is empty")
    expiry = _expiry(expires_at)
    values = _read_secrets(service, names, from_stdin, scheme.help)
    row = _store(ctx).put(service, tenant, method, values, expiry, connector.clock.time())
    summary = row.summary()
    render(fmt(output, as_json), summary, lambda: kv_table(f"stored {row.label}", _readable(summary)))


@app.command("list")
def creds_list(
    ctx: typer.Context,
    tenant: Optional[str] = TenantOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Stored credentials and those from the environment, with a masked hint and where each comes from.

    Never a secret: the hint is masked.
    """
    from rich.markup import escape

    rows = [
        {**r.summary(), "source": "store:tenant" if r.tenant_id else "store"}
        for r in _store(ctx).rows(tenant_id=tenant)
    ]
    if tenant is None:
        rows += [_env_summary(c) for c in _provider(ctx).env_sources()]
    empty = "no credentials stored or in the environment; add one with: connectorctl creds set SERVICE "
    empty += "(or export the vendor's variable, e.g. SENDGRID_API_KEY)"
    columns = (
        Column("service"),
        Column("tenant"),
        Column("method", drop=1),
        Column("hint"),
        Column("source"),
        Column("expires (UTC)", drop=2),
        Column("last used (UTC)", drop=3),
        Column("active"),
    )
    render(
        fmt(output, as_json),
        rows,
        lambda: grid(
            "credentials",
            columns,
            (
                (
                    escape(r["service"]),
                    escape(show(r["tenant"])),
                    r["auth_method"],
                    escape(show(r["hint"])),
                    escape(r["source"]),
                    human_time(r["expires_at"]),
                    human_time(r["last_used_at"]),
                    show(r["active"]),
                )
                for r in rows
            ),
        ),
        empty=None if rows else empty,
    )


def _env_summary(creds: Any) -> dict[str, Any]:
    """A credential from the environment, in the shape of a stored row's summary (never its value)."""
    from connectorctl.credentials.store import hint_for

    return {
        "service": creds.service_name,
        "tenant": None,
        "auth_method": creds.auth_method.value,
        "hint": hint_for(creds.data),
        "fields": sorted(creds.data),
        "expires_at": None,
        "last_used_at": None,
        "active": True,
        "key_id": None,
        "updated_at": None,
        "source": creds.source,
    }


@app.command("show")
def creds_show(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    tenant: Optional[str] = TenantOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Show one credential (masked) and whether it decrypts with the configured master key."""
    from connectorctl.errors import CredentialUnreadableError

    service = required_service(service, service_opt)
    store = _store(ctx)
    row = _row(ctx, service, tenant)
    summary = row.summary()
    problem = None
    try:
        store.decrypt(row)
    except CredentialUnreadableError as exc:
        problem = exc
    summary["readable"] = problem is None
    summary["master_key_source"] = store.keys.source.name
    render(fmt(output, as_json), summary, lambda: kv_table(row.label, _readable(summary)))
    if problem is not None:
        raise problem


def _toggle(
    ctx: typer.Context, service: str, tenant: Optional[str], active: bool, output: OutputFormat, as_json: bool
) -> None:
    row = _row(ctx, service, tenant)
    _store(ctx).set_active(row, active, state(ctx).connector().clock.time())
    result = {"service": service, "tenant": tenant, "active": active}
    render(fmt(output, as_json), result, lambda: f"{'enabled' if active else 'disabled'} {row.label}")


@app.command("disable")
def creds_disable(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    tenant: Optional[str] = TenantOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Stop using a credential without deleting it (a tenant then falls back to the global one)."""
    _toggle(ctx, required_service(service, service_opt), tenant, False, output, as_json)


@app.command("enable")
def creds_enable(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    tenant: Optional[str] = TenantOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Use a disabled credential again."""
    _toggle(ctx, required_service(service, service_opt), tenant, True, output, as_json)


@app.command("rm")
def creds_rm(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    tenant: Optional[str] = TenantOption,
    yes: bool = YesOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Delete a stored credential (asks first; --yes in scripts)."""
    from connectorctl.cli.output import confirm

    service = required_service(service, service_opt)
    row = _row(ctx, service, tenant)
    confirm(f"delete the stored credential for {row.label}? This cannot be undone.", yes)
    _store(ctx).delete(row)
    result = {"service": service, "tenant": tenant, "removed": True}
    render(fmt(output, as_json), result, lambda: f"removed {row.label}")


@app.command("rotate-key")
def creds_rotate_key(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Re-encrypt every credential under a new master key in one transaction (crash-safe)."""
    from connectorctl.credentials.rotation import rotate_key

    result = rotate_key(_store(ctx), state(ctx).connector().clock.time()).to_dict()
    render(fmt(output, as_json), result, lambda: kv_table("master key rotated", result.items()))


@app.command("test")
def creds_test(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    tenant: Optional[str] = TenantOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """One authenticated, harmless call to the vendor: reports ok, rejected or unreachable."""
    from connectorctl.cli.creds_test import verify

    service = required_service(service, service_opt)
    result, exit_code = verify(state(ctx).connector(), service, tenant)
    render(fmt(output, as_json), result, lambda: kv_table(f"credential test: {service}", result.items()))
    if exit_code:
        raise typer.Exit(exit_code)
