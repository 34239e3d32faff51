"""Help that reads at an 80-column terminal: every group and command is built on these classes.

Typer lists a positional argument with its Python type (``SERVICE <str>``) and
Click cuts a command's summary in a group's listing at ~45 characters with
``...``; neither tells a user anything, and both eat the narrow terminal's
width.  Here a positional is listed by the name the usage line gives it and a
summary is the docstring's whole first paragraph, wrapped like any other help
text.  Help is plain text (no rich boxes), like the rest of our help.
"""

from __future__ import annotations

from typing import Any, Callable

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType


def summary(help_text: str | None) -> str:
    """The first paragraph of a help text on one line, never shortened (the help formatter wraps it)."""
    first = (help_text or "").strip().split("\n\n", 1)[0]
    return " ".join(first.split())


class PlainCommand(TyperCommand):
    def get_short_help_str(self, limit: int = 45) -> str:
        return summary(self.short_help or self.help)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] SERVICE [PREFIX]``: Click's notation, a required positional bare, an optional one in brackets."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_name(param) if param.required else f"[{_name(param)}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_name(param), record[1]))
            else:
                options.append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


def _name(argument: Any) -> str:
    name = argument.metavar or argument.name.upper()
    return name if argument.nargs == 1 else f"{name}..."


class PlainGroup(TyperGroup):
    def get_short_help_str(self, limit: int = 45) -> str:
        return summary(self.short_help or self.help)


class CommandGroup(typer.Typer):
    """A command group whose commands get :class:`PlainCommand` help."""

    def __init__(self, *, help: str, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(help=help, cls=PlainGroup, rich_markup_mode=None, **kwargs)

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", PlainCommand)
        return super().command(name, **kwargs)
