# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Errors of a study bundle, and the one line that states a failure's cause.

MONAI wraps every exception raised while a config is evaluated (``RuntimeError("Failed to evaluate ...")``,
``RuntimeError("Failed to instantiate component ...")``) and ``Compose`` wraps transform errors
(``RuntimeError("applying transform ...")``), each ``from`` the exception it caught. A traceback therefore ends with
the outermost wrapper, e.g. ``Failed to evaluate ConfigExpression: $@report.write(@results)``, while the cause sits
in the middle. :func:`root_cause` walks the ``__cause__`` chain past those wrappers, and :func:`install_cause_hook`
makes the bundle CLI print that cause as the last line of a failed run, after the full traceback.
"""

from __future__ import annotations

import sys
from types import TracebackType

__all__ = ["BundleConfigError", "StudyRunError", "cause_line", "install_cause_hook", "root_cause"]

# messages of the exceptions that only wrap another one (MONAI config evaluation and Compose)
_WRAPPER_PREFIXES = ("Failed to evaluate", "Failed to instantiate", "applying transform")


class BundleConfigError(ValueError):
    """A bundle setting (a config value or a command-line override) that cannot work; the message names the
    override (``--metric``) and what it accepts."""


class StudyRunError(RuntimeError):
    """A study step (e.g. one seed) failed; the message names the step and the cause."""


def _is_wrapper(exc: BaseException) -> bool:
    return type(exc) is RuntimeError and exc.__cause__ is not None and str(exc).lstrip().startswith(_WRAPPER_PREFIXES)


def root_cause(exc: BaseException) -> BaseException:
    """The first exception in ``exc``'s ``__cause__`` chain that is not a MONAI/Compose wrapper (``exc`` itself
    when it is none)."""
    seen = set()
    while _is_wrapper(exc) and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__  # type: ignore[assignment]
    return exc


def cause_line(exc: BaseException) -> str:
    """``"<type>: <message>"`` of :func:`root_cause`, on one line."""
    cause = root_cause(exc)
    message = " ".join(str(cause).split())
    return f"{type(cause).__name__}: {message}" if message else type(cause).__name__


def _cause_hook(previous):
    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        previous(exc_type, exc, tb)
        if isinstance(exc, Exception):
            sys.stderr.write(f"\nerror: {cause_line(exc)}\n")
            sys.stderr.flush()

    hook.monai_fair_cause_hook = True  # type: ignore[attr-defined]
    return hook


def install_cause_hook() -> None:
    """Print the cause of an uncaught exception (:func:`cause_line`) as the last line, after the usual traceback.

    Bundle configs call it first in ``initialize``, so any later failure of ``python -m monai.bundle run`` ends
    with ``error: <cause>`` instead of the outermost config expression. Installing it twice is harmless.
    """
    if not getattr(sys.excepthook, "monai_fair_cause_hook", False):
        sys.excepthook = _cause_hook(sys.excepthook)
