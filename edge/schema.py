"""The base of every schema edge-inspect reads, and how a violation of one becomes one line.

Run configs (edge.config), bundle.json and model cards (edge.bundle), and every section they hold
derive from `StrictModel`: an unknown key is an error, so a typo never silently changes
behaviour. This module imports nothing else of edge/ but edge.errors, so every module can use it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from pydantic import BaseModel, ConfigDict, ValidationError

from edge.errors import EdgeError


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid")


def first_problem(exc: ValueError, with_key: bool = False) -> str:
    """The first problem of a validation error, without pydantic's "Value error, " prefix.

    `with_key`: prefixed with the dotted key it is about ("model.kind: ..."). A plain ValueError
    (not pydantic's) is its own message.
    """
    if not isinstance(exc, ValidationError):
        return str(exc)
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    if not with_key:
        return message
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{key}: {message}"


@contextmanager
def one_line_errors(prefix: str) -> Iterator[None]:
    """A validation error inside becomes EdgeError("PREFIX: first problem"), one line for the user."""
    try:
        yield
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise EdgeError(f"{prefix}: {first_problem(exc)}") from None
