"""``connectorctl webhook verify|sign``: check a captured delivery, or make a signed example.

Secrets never come from argv (it is visible in ``ps`` and shell history):
only from ``--secret-env VAR`` or ``--secret-from-creds SERVICE``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from connectorctl.cli.output import (
    JsonOption,
    OutputFormat,
    OutputOption,
    fmt,
    kv_table,
    parse_header_options,
    render,
    state,
)
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="Verify vendor webhook signatures, or sign example deliveries for testing a receiver.")

SchemeOption = typer.Option(
    None,
    "--scheme",
    help="stripe, paypal, twilio, sendgrid, mandrill, mailgun, vonage, github, standard, easypost, postmark "
    "or generic.",
    metavar="SCHEME",
)
ServiceOption = typer.Option(
    None, "--service", help="Take scheme, options and secrets from the config's webhooks.<SERVICE>.", metavar="SLUG"
)
SecretEnvOption = typer.Option(
    [], "--secret-env", help="Env var holding a secret (repeat for several active secrets).", metavar="VAR"
)
SecretCredsOption = typer.Option(
    None,
    "--secret-from-creds",
    help="Use the stored credentials of SERVICE (secret/api_key/token/password field).",
    metavar="SERVICE",
)
BodyFileOption = typer.Option(
    ..., "--body-file", help="The raw body, byte for byte ('-' reads stdin).", allow_dash=True, metavar="FILE"
)
UrlOption = typer.Option(None, "--url", help="Public URL the vendor called (twilio, mandrill sign it).", metavar="URL")
ToleranceOption = typer.Option(
    None, "--tolerance", help="Freshness tolerance in seconds (default 300; 0 disables).", metavar="SECONDS"
)
HeaderNameOption = typer.Option(
    None, "--signature-header", help="generic: header carrying the signature (default X-Signature).", metavar="NAME"
)
AlgorithmOption = typer.Option(None, "--algorithm", help="generic: sha1, sha256 (default) or sha512.", metavar="NAME")
EncodingOption = typer.Option(None, "--encoding", help="generic: hex (default) or base64.", metavar="NAME")
PrefixOption = typer.Option(
    None, "--prefix", help="generic: prefix of the header value, e.g. 'sha256='.", metavar="TEXT"
)
SignedContentOption = typer.Option(
    None,
    "--signed-content",
    help="generic: template over {body} {timestamp} {id} {url} (default '{body}').",
    metavar="TEMPLATE",
)
TimestampHeaderOption = typer.Option(
    None, "--timestamp-header", help="generic: header with the unix timestamp.", metavar="NAME"
)
IdHeaderOption = typer.Option(None, "--id-header", help="generic: header with the delivery id.", metavar="NAME")
CertOriginOption = typer.Option(
    [],
    "--cert-origin",
    help="paypal: origin certificates may come from (repeatable; default PayPal's API hosts).",
    metavar="URL",
)


def _read_body(path: Path) -> bytes:
    from connectorctl.validation import MIB, read_limited

    return read_limited(sys.stdin.buffer if str(path) == "-" else path, f"body file {path}", 10 * MIB)


def _setup(
    ctx: typer.Context,
    scheme: Optional[str],
    service: Optional[str],
    secret_env: List[str],
    secret_from_creds: Optional[str],
    options: dict[str, Any],
) -> tuple[Any, list[str]]:
    """The verifier and the secrets, from flags, else from ``webhooks.<service>`` in the config."""
    from connectorctl.errors import InvalidInputError
    from connectorctl.webhooks.registry import get_verifier
    from connectorctl.webhooks.service import (
        creds_secret,
        endpoint_settings,
        env_secrets,
        resolve_secrets,
        verifier_for,
    )

    connector = state(ctx).connector() if (service or secret_from_creds) else None
    hook = endpoint_settings(connector, service) if service and connector else None
    if scheme is None and hook is None:
        raise InvalidInputError("give --scheme (or --service naming a configured webhook endpoint)")
    if hook is not None and scheme in (None, hook.scheme):
        import dataclasses

        fields = {f.name for f in dataclasses.fields(hook)}
        hook = dataclasses.replace(hook, **{k: v for k, v in options.items() if v is not None and k in fields})
        verifier = verifier_for(hook, **{k: v for k, v in options.items() if v is not None and k not in fields})
    else:
        verifier = get_verifier(scheme or "", **{k: v for k, v in options.items() if v is not None})
    secrets = env_secrets(secret_env)
    if secret_from_creds and connector is not None:
        secrets.append(creds_secret(connector, secret_from_creds))
    if not secrets and hook is not None and connector is not None:
        secrets = resolve_secrets(connector, hook)
    if not secrets:
        raise InvalidInputError(
            "no secret: give --secret-env VAR or --secret-from-creds SERVICE (never the secret itself)"
        )
    return verifier, secrets


def _options(
    url: Optional[str],
    tolerance: Optional[float],
    header: Optional[str],
    algorithm: Optional[str],
    encoding: Optional[str],
    prefix: Optional[str],
    signed_content: Optional[str],
    timestamp_header: Optional[str],
    id_header: Optional[str],
) -> dict[str, Any]:
    return {
        "url": url,
        "tolerance_seconds": tolerance,
        "header": header,
        "algorithm": algorithm,
        "encoding": encoding,
        "prefix": prefix,
        "signed_content": signed_content,
        "timestamp_header": timestamp_header,
        "id_header": id_header,
    }


@app.command("verify")
def webhook_verify(
    ctx: typer.Context,
    body_file: Path = BodyFileOption,
    header: List[str] = typer.Option(
        [], "--header", "-H", help="A received header 'Name: value' (repeatable).", metavar="'NAME: VALUE'"
    ),
    scheme: Optional[str] = SchemeOption,
    service: Optional[str] = ServiceOption,
    secret_env: List[str] = SecretEnvOption,
    secret_from_creds: Optional[str] = SecretCredsOption,
    url: Optional[str] = UrlOption,
    tolerance: Optional[float] = ToleranceOption,
    check_replay: bool = typer.Option(
        False, "--check-replay", help="Record the delivery id in the state DB and refuse one already seen."
    ),
    signature_header: Optional[str] = HeaderNameOption,
    algorithm: Optional[str] = AlgorithmOption,
    encoding: Optional[str] = EncodingOption,
    prefix: Optional[str] = PrefixOption,
    signed_content: Optional[str] = SignedContentOption,
    timestamp_header: Optional[str] = TimestampHeaderOption,
    id_header: Optional[str] = IdHeaderOption,
    cert_origin: List[str] = CertOriginOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Verify one captured delivery; exit 0 when genuine and fresh, 1 with the reason otherwise."""
    import time

    from connectorctl.webhooks.base import WebhookRejectedError, WebhookRequest
    from connectorctl.webhooks.service import verify_delivery

    options = _options(
        url, tolerance, signature_header, algorithm, encoding, prefix, signed_content, timestamp_header, id_header
    )
    options["cert_origins"] = tuple(cert_origin) or None
    verifier, secrets = _setup(ctx, scheme, service, secret_env, secret_from_creds, options)
    request = WebhookRequest(_read_body(body_file), parse_header_options(header), url)
    store = None
    if check_replay:
        from connectorctl.webhooks.replay import ReplayStore

        store = ReplayStore(state(ctx).connector().db)
    verdict = verify_delivery(
        verifier, request, secrets, service=service or verifier.scheme, store=store, now=time.time()
    )
    out = fmt(output, as_json)
    if verdict.ok or out is not OutputFormat.table:
        render(
            out,
            verdict.to_dict(),
            lambda: kv_table(
                "valid",
                [
                    ("scheme", verdict.scheme),
                    ("event id", verdict.event_id),
                    ("event type", verdict.event_type),
                    ("timestamp", verdict.timestamp),
                ],
            ),
        )
    if not verdict.ok:
        raise WebhookRejectedError(verdict.reason, f"{verdict.scheme} webhook rejected: {verdict.detail}")


@app.command("sign")
def webhook_sign(
    ctx: typer.Context,
    body_file: Path = BodyFileOption,
    scheme: Optional[str] = SchemeOption,
    service: Optional[str] = ServiceOption,
    secret_env: List[str] = typer.Option(
        [], "--secret-env", help="Env var holding the secret (sendgrid: the private key).", metavar="VAR"
    ),
    secret_from_creds: Optional[str] = SecretCredsOption,
    url: Optional[str] = UrlOption,
    timestamp: Optional[int] = typer.Option(
        None, "--timestamp", help="Unix time to sign at (default now): make stale examples.", metavar="UNIX_TIME"
    ),
    event_id: Optional[str] = typer.Option(
        None,
        "--event-id",
        help="Delivery id for schemes that carry one (standard, github, mailgun token, paypal transmission id).",
        metavar="ID",
    ),
    body_out: Optional[Path] = typer.Option(
        None, "--body-out", help="Write the body to send (mailgun/mandrill change it) to this file.", metavar="FILE"
    ),
    signature_header: Optional[str] = HeaderNameOption,
    algorithm: Optional[str] = AlgorithmOption,
    encoding: Optional[str] = EncodingOption,
    prefix: Optional[str] = PrefixOption,
    signed_content: Optional[str] = SignedContentOption,
    timestamp_header: Optional[str] = TimestampHeaderOption,
    id_header: Optional[str] = IdHeaderOption,
    signing_key: Optional[Path] = typer.Option(
        None, "--signing-key", help="paypal: PEM file with the RSA private key to sign with.", metavar="SIGNING_KEY"
    ),
    cert_url: Optional[str] = typer.Option(
        None, "--cert-url", help="paypal: URL serving the certificate of --signing-key.", metavar="CERT_URL"
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Produce a correctly signed example delivery (headers, URL, body) for testing a receiver."""
    options = _options(
        url, None, signature_header, algorithm, encoding, prefix, signed_content, timestamp_header, id_header
    )
    options.update(signing_key_file=str(signing_key) if signing_key else None, cert_url=cert_url)
    verifier, secrets = _setup(ctx, scheme, service, secret_env, secret_from_creds, options)
    signed = verifier.sign(_read_body(body_file), secrets[0], now=timestamp, url=url, event_id=event_id)
    if body_out is not None:
        body_out.write_bytes(signed.body)
    data = signed.to_dict()
    rows = (
        [("url", signed.url)] + [(name, value) for name, value in signed.headers.items()] + list(signed.extra.items())
    )
    render(fmt(output, as_json), data, lambda: kv_table(f"signed {signed.scheme} example", rows))
