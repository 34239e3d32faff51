"""The httpx client every vendor call goes through: httpx's own transport and pool, set up per vendor.

- Proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY`` from the
  environment are honoured (httpx's ``trust_env``), so a host behind an egress proxy
  reaches its vendors.
- Trust: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set, else certifi's bundle.  A vendor's
  ``ca_bundle`` (a PEM file) replaces that for this vendor alone: a vendor behind a
  private CA does not widen the trust of every other vendor.
- Client certificate (mutual TLS): ``client_cert`` is a PEM file holding the certificate,
  and its key unless ``client_key`` names a separate, unencrypted PEM key file.
- No cookies: vendor APIs are stateless, and a client shared by every tenant must not
  carry one tenant's session into another tenant's call.

A test that injects a transport (``Connector(transports=...)``) replaces the network
stack, proxies included.
"""

from __future__ import annotations

import http.cookiejar
import os
import ssl
from typing import Any

import httpx

from connectorctl.errors import ConfigurationError

USER_AGENT = "connectorctl"


class NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that never stores nor sends a cookie."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def ssl_context(slug: str, vendor: Any) -> ssl.SSLContext:
    """The TLS settings for one vendor: its ``ca_bundle`` or the default trust, plus its client certificate.

    A file that cannot be read or is not PEM is a configuration error, not a
    transport failure: retrying cannot fix it and it must not open the circuit.
    """
    ca_bundle, client_cert, client_key = (
        os.path.expanduser(p) if p else None for p in (vendor.ca_bundle, vendor.client_cert, vendor.client_key)
    )
    key = "ca_bundle"
    try:
        if ca_bundle:
            context = ssl.create_default_context(cafile=ca_bundle)
        else:
            context = httpx.create_ssl_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
        key = "client_cert"
        if client_cert:
            context.load_cert_chain(client_cert, client_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"vendors.{slug}.{key}: cannot load it ({exc.strerror or exc})", hint="give the path of a readable PEM file"
        ) from None
    return context


def vendor_client(
    slug: str, vendor: Any, transport: httpx.BaseTransport | None = None, verify: ssl.SSLContext | None = None
) -> httpx.Client:
    """A new client for vendor ``slug`` configured by ``vendor`` (its :class:`~connectorctl.config.VendorSettings`).

    ``verify``: the vendor's :func:`ssl_context` when the caller has one (loading a CA bundle costs ~20 ms).
    """
    timeout = httpx.Timeout(vendor.timeout_seconds, connect=vendor.connect_timeout_seconds)
    return httpx.Client(
        timeout=timeout,
        verify=verify or ssl_context(slug, vendor),
        transport=transport,
        trust_env=True,
        headers={"User-Agent": USER_AGENT},
        cookies=NoCookies(),
    )
