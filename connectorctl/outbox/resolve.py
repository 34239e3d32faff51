"""Settling a send that may have reached the vendor, before anything is sent again.

A worker killed mid-request, or a bulk run killed mid-batch, leaves a message
whose fate only the vendor knows.  Every send carries our message key (the
correlation id) in the vendor's metadata / custom-args field, so:

1. our own integration log first: a ``success`` row under the key means sent
   (the pipeline commits it before the call returns);
2. then each vendor of the chain that may have had the request in flight, asked
   through its search API (:meth:`Adapter.find_sent`): found means sent, with the
   vendor's id;
3. when every such vendor says no, the message was not sent and may go again;
   when one of them cannot be asked, nobody can tell: an operator decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectorctl.gateway import _Gateway


@dataclass(frozen=True)
class Resolution:
    sent: bool | None  # None: a vendor that may have it cannot be asked
    vendor: str | None = None
    message_id: str | None = None
    reason: str = ""


def resolve(gateway: _Gateway[Any], message: Any, *, key: str, since: float) -> Resolution:
    """Whether the send under ``key`` reached a vendor of ``gateway``'s chain.

    A vendor's search failing (an outage) raises its error: the question stays open.
    """
    connector, channel = gateway.connector, gateway.channel
    connector.flush()
    rows = connector.db.run(
        lambda c: c.execute(
            "SELECT service_name, status FROM integration_logs WHERE correlation_id = ? AND operation LIKE ?",
            (key, f"send_{channel}%"),
        ).fetchall()
    )
    for service, status in rows:
        if status == "success":
            return Resolution(True, service, None, "recovered from the integration log")
    tried = {service for service, _ in rows}
    # A vendor is tried only after every one before it failed (and was logged), so the request in flight
    # went to the first vendor, or to the one after the last vendor with a logged attempt.
    last = max((i for i, slug in enumerate(gateway.chain) if slug in tried), default=-1)
    prepared = gateway.prepared(message)
    for slug in gateway.chain[: last + 2]:
        adapter = connector.adapter(slug, channel)
        if not adapter.askable:
            return Resolution(
                None,
                slug,
                None,
                f"{slug} may have sent it and cannot be asked by our key: check its message log, then retry or drop it",
            )
        match = adapter.find_sent(prepared, key=key, since=since, tenant_id=gateway.tenant_id)
        if match is not None:
            return Resolution(True, slug, match.message_id, f"found at {slug} by its key")
    return Resolution(False, None, None, "no vendor has it")
