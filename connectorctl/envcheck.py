"""Warn about a mistyped ``CONNECTOR_*`` / ``CONNECTORCTL_*`` environment variable.

``CONNECTOR_EMAIL_VENDER=postmark`` would otherwise be ignored in silence and
the default vendor used.  Every variable with one of our prefixes that we do
not read gets a :class:`ConfigWarning` naming the closest one we do read.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Iterable, Mapping

PREFIXES = ("CONNECTOR_", "CONNECTORCTL_")
# Read elsewhere than the config loader's overrides (credentials, API, state file, CLI).
OTHER_KNOWN = (
    "CONNECTORCTL_HOME",
    "CONNECTORCTL_CONFIG",
    "CONNECTORCTL_DEBUG",
    "CONNECTORCTL_MASTER_KEY",
    "CONNECTORCTL_MASTER_KEY_PREVIOUS",
    "CONNECTORCTL_MASTER_KEY_FILE",
    "CONNECTORCTL_API_TOKEN",
    "CONNECTORCTL_BUSY_TIMEOUT_MS",
    "CONNECTORCTL_DATABASE_URL",
)


class ConfigWarning(UserWarning):
    """Something in the environment or config is probably not what was meant (nothing fails because of it)."""


def unknown_variables(environ: Mapping[str, str], known: Iterable[str]) -> list[tuple[str, str | None]]:
    """``(name, closest known name or None)`` for each of our prefixed variables that nothing reads."""
    names = sorted({*known, *OTHER_KNOWN})
    by_tail = {_tail(n): n for n in names}  # compare what follows the prefix, which every name shares
    found = []
    for var in sorted(environ):
        if var.startswith(PREFIXES) and var not in names:
            close = difflib.get_close_matches(_tail(var), list(by_tail), n=1, cutoff=0.7)
            found.append((var, by_tail[close[0]] if close else None))
    return found


def _tail(name: str) -> str:
    return name.removeprefix("CONNECTORCTL_").removeprefix("CONNECTOR_")


def warn_unknown_variables(environ: Mapping[str, str], known: Iterable[str]) -> None:
    for var, closest in unknown_variables(environ, known):
        guess = f"; did you mean {closest}?" if closest else ""
        warnings.warn(ConfigWarning(f"environment variable {var} is not used by connectorctl{guess}"), stacklevel=3)
