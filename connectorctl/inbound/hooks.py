"""Hooks an application registers to act on incoming mail (an invoice to book, a reply to file).

A hook is any callable taking one :class:`InboundMessage`; it runs after the
message is stored, once per message (never for a duplicate delivery).  Register
one in Python with :func:`on_inbound`, or by name in ``inbound.<service>.hooks``
(``package.module:function``) for ``connectorctl serve``.  A hook that raises is
logged and recorded on the message; the vendor still gets its 200, since the
message is safely stored.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Callable, Iterable

from connectorctl.errors import ConfigurationError
from connectorctl.inbound.message import InboundMessage

InboundHook = Callable[[InboundMessage], object]
_HOOKS: list[InboundHook] = []
_LOCK = threading.Lock()
log = logging.getLogger("connectorctl.inbound")


def on_inbound(hook: InboundHook) -> InboundHook:
    """Register ``hook`` for every inbound message this process stores (usable as a decorator)."""
    with _LOCK:
        if hook not in _HOOKS:
            _HOOKS.append(hook)
    return hook


def remove_hook(hook: InboundHook) -> None:
    with _LOCK:
        if hook in _HOOKS:
            _HOOKS.remove(hook)


def load(name: str) -> InboundHook:
    """``package.module:function`` -> the callable (a configuration error names what is wrong)."""
    module_name, sep, attribute = name.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigurationError(f"inbound hook {name!r}: expected package.module:function")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"inbound hook {name!r} cannot be loaded ({type(exc).__name__}: {exc})") from None
    if not callable(target):
        raise ConfigurationError(f"inbound hook {name!r} is not callable")
    return target


def run_hooks(message: InboundMessage, configured: Iterable[str]) -> list[str]:
    """Call every hook for ``message``; the errors, as text, for the message's record."""
    with _LOCK:
        registered = list(_HOOKS)
    errors = []
    hooks: list[str | InboundHook] = [*configured, *registered]
    for hook in hooks:
        name = hook if isinstance(hook, str) else getattr(hook, "__qualname__", repr(hook))
        try:
            call = load(hook) if isinstance(hook, str) else hook
            call(message)
        except Exception as exc:  # noqa: BLE001 - one application hook must not lose the message or stop the others
            log.warning("inbound hook %s failed on message %s: %s", name, message.id, type(exc).__name__)
            errors.append(f"{name}: {type(exc).__name__}: {exc}"[:500])
    return errors
