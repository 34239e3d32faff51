"""What an adapter may use: its own settings and five services, never the whole ``Connector``.

A narrow context keeps adapters testable on their own and keeps the import
graph one-way (gateway -> adapters -> pipeline), with no cycle hidden behind
``TYPE_CHECKING``.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Generic, Mapping, TypeVar

from connectorctl.domain.roles import CredentialProvider
from connectorctl.resilience.clock import Clock
from connectorctl.settings import Settings, VendorSettings

if TYPE_CHECKING:
    import httpx

    from connectorctl.resilience.pipeline import Pipeline

OptionsT = TypeVar("OptionsT", bound=VendorSettings)


class AdapterContext(Generic[OptionsT]):
    """Handed to an adapter when it is created.

    ``options`` are the vendor's own typed settings (its options class);
    ``settings`` the installation-wide ones (redaction fields, home folder).
    The pipeline is built on first use, so a dry-run starts no log writer.
    """

    def __init__(
        self,
        slug: str,
        options: OptionsT,
        *,
        settings: Settings,
        credentials: CredentialProvider,
        pipeline: Callable[[], Pipeline],
        http_client: Callable[[], httpx.Client],
        clock: Clock,
        metrics: Callable[[str, datetime, datetime], Mapping[str, Any]],
    ) -> None:
        self.slug = slug
        self.options = options
        self.settings = settings
        self.credentials = credentials
        self._pipeline = pipeline
        self.http_client = http_client
        self.clock = clock
        self.metrics = metrics

    @cached_property
    def pipeline(self) -> Pipeline:
        return self._pipeline()
