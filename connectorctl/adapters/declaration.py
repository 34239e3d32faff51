"""How a vendor module declares itself: one :class:`Vendor` value named ``VENDOR``.

The declaration is everything the rest of connectorctl needs to know about a
vendor without reading its code: its slug, the adapter class per channel (and
so the capabilities each one carries), the options class its
``vendors.<slug>`` section is read into, and the auth methods it accepts with
their credential field names (``creds set`` prompts for exactly those), and
the vendor's own environment variables, the last place a credential or a
sender is looked for (so a ``.env`` written for the vendor keeps working).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from connectorctl.domain.values import AuthMethod
from connectorctl.settings import VendorSettings

if TYPE_CHECKING:
    from connectorctl.adapters.base import Adapter


@dataclass(frozen=True)
class AuthScheme:
    """One way a vendor accepts credentials: the method and its field names.

    ``fields`` are what ``creds set`` prompts for; ``optional`` fields may be
    stored too (``--field``); ``required`` must be present to call the vendor
    (default: all of ``fields``).
    """

    method: AuthMethod
    fields: tuple[str, ...]
    optional: tuple[str, ...] = ()
    required: tuple[str, ...] | None = None
    help: str = ""  # what the fields are called in the vendor's console, shown when prompting

    @property
    def needed(self) -> tuple[str, ...]:
        return self.fields if self.required is None else self.required

    @property
    def allowed(self) -> frozenset[str]:
        return frozenset(self.fields) | frozenset(self.optional)


# The usual schemes; a vendor whose field names differ declares its own AuthScheme.
API_KEY = AuthScheme(AuthMethod.API_KEY, ("api_key",))
BEARER_TOKEN = AuthScheme(AuthMethod.BEARER_TOKEN, ("token",))
BASIC_AUTH = AuthScheme(AuthMethod.BASIC_AUTH, ("username", "password"))
# An oauth2 credential may start as client id/secret or as an access token; the provider renews it before use.
OAUTH2 = AuthScheme(
    AuthMethod.OAUTH2, ("client_id", "client_secret"), ("access_token", "refresh_token"), required=("access_token",)
)
HMAC = AuthScheme(AuthMethod.HMAC, ("key_id", "secret"), required=("secret",))
GENERIC_SCHEMES: Mapping[AuthMethod, AuthScheme] = {
    s.method: s for s in (API_KEY, BEARER_TOKEN, BASIC_AUTH, OAUTH2, HMAC)
}


# Sender settings every vendor of a channel falls back to, under the names the reference design's .env uses.
CHANNEL_SENDER_ENV: Mapping[str, Mapping[str, str]] = {
    "email": {"from_email": "MAIL_FROM_ADDRESS", "from_name": "MAIL_FROM_NAME"},
}


@dataclass(frozen=True)
class Vendor:
    """A vendor's declaration (``VENDOR`` in its module), read by the catalog only when the slug is used.

    ``auth`` lists the accepted schemes, the default first; an empty tuple means
    the vendor takes no credentials.  ``credentials_optional`` marks a vendor
    that works with or without them (an SMTP relay without AUTH).  ``env``
    names the vendor's own environment variable for each credential field
    (``{"api_key": "SENDGRID_API_KEY"}``) and ``sender_env`` the one for a
    sender setting (``{"from_number": "TWILIO_FROM_NUMBER"}``); both are used
    only when nothing else is configured.
    """

    slug: str
    description: str
    adapters: Mapping[str, type[Adapter[Any]]]
    options: type[VendorSettings] = VendorSettings
    auth: tuple[AuthScheme, ...] = (API_KEY,)
    credentials_optional: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    sender_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(self.adapters)

    @property
    def capabilities(self) -> Mapping[str, frozenset[str]]:
        """The message features each channel's adapter carries (anything else is refused before a request)."""
        return {channel: cls.capabilities for channel, cls in self.adapters.items()}

    def scheme(self, method: str | AuthMethod | None) -> AuthScheme | None:
        """The declared scheme for ``method`` (the default one for None); None if the vendor does not take it."""
        if not self.auth:
            return None
        if method is None:
            return self.auth[0]
        wanted = method.value if isinstance(method, AuthMethod) else method
        return next((s for s in self.auth if s.method.value == wanted), None)

    def options_for(self, configured: VendorSettings) -> VendorSettings:
        """``configured`` as this vendor's options: a section the loader did not read (defaults, or
        a shared ``VendorSettings`` a library caller built) keeps its shared values."""
        if isinstance(configured, self.options):
            return configured
        from dataclasses import fields

        return self.options(**{f.name: getattr(configured, f.name) for f in fields(VendorSettings)})
