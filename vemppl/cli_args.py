"""Argument checking for the command line, all of it before any model is read or fitted.

Every option is checked where argparse reads it (a ``type=`` function below), so a bad value
is reported at once, naming the option (``argument --tol: expected a finite number >= 0;
got 'nan'``), with exit status 2 and without importing JAX.  A misspelled option or verb is
answered with the nearest spelling (``did you mean --max-iter?``).  The output paths are
checked before the fit, so a fit never runs to be lost for want of a place to write it.

No JAX, NumPy or model code is imported here: ``vemppl --help`` and argument errors must stay
fast (issue #21).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
from pathlib import Path

#: The largest seed: NumPy and JAX both take any seed in [0, 2**32).
MAX_SEED = 2**32 - 1


class Parser(argparse.ArgumentParser):
    """argparse with suggestions: a misspelled verb, choice or option gets the nearest one."""

    def error(self, message):
        suggestion = _suggest_choice(self, message)
        if suggestion:
            message = f"{message}; did you mean '{suggestion}'?"
        super().error(message)

    def unrecognized(self, extras: list[str]):
        """Report options this parser does not know, each with its nearest spelling."""
        known = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        parts = []
        for arg in extras:
            flag = arg.split("=", 1)[0]
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6) if flag.startswith("-") else []
            parts.append(f"{arg} (did you mean {close[0]}?)" if close else arg)
        self.error("unrecognized arguments: " + " ".join(parts))


def _suggest_choice(parser, message) -> str | None:
    match = re.search(r"invalid choice: '([^']*)'", message)
    if not match:
        return None
    choices = [str(c) for a in parser._actions if a.choices for c in a.choices]
    close = difflib.get_close_matches(match.group(1), choices, n=1, cutoff=0.5)
    return close[0] if close else None


# ---- value types: each raises ArgumentTypeError, which argparse prefixes with the option ----
def whole(minimum: int, maximum: int | None = None):
    """A whole number in [minimum, maximum]."""

    def check(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number; got '{text}'") from None
        if v < minimum or (maximum is not None and v > maximum):
            span = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"expected a whole number {span}; got {text}")
        return v

    check.__name__ = "whole number"
    return check


def memory_size(text: str) -> str:
    """A memory size such as 64G, 512M or a number of bytes (``ir/memory.py``'s syntax)."""
    from .diagnostics import VemError
    from .ir.memory import parse_memory

    try:
        parse_memory(text, "--max-memory")
    except VemError as e:
        raise argparse.ArgumentTypeError(e.message) from None
    return text


def finite(minimum: float = 0.0):
    """A finite number >= minimum."""

    def check(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number; got '{text}'") from None
        if not math.isfinite(v) or v < minimum:
            raise argparse.ArgumentTypeError(f"expected a finite number >= {minimum:g}; got '{text}'")
        return v

    check.__name__ = "number"
    return check


def step_size(text: str) -> tuple[float, float]:
    """``TAU,KAPPA`` of the SVI step size (t + TAU)^-KAPPA: TAU >= 0, KAPPA in (0.5, 1]."""
    try:
        tau, kappa = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers TAU,KAPPA; got '{text}'") from None
    if not (math.isfinite(tau) and tau >= 0 and 0.5 < kappa <= 1):
        raise argparse.ArgumentTypeError(f"expected TAU >= 0 and KAPPA in (0.5, 1]; got '{text}'")
    return tau, kappa


def setting(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` of ``--set``: VALUE a finite number or a (nested) list of them."""
    name, eq, value = text.partition("=")
    name = name.strip()
    if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (as K=5 or alpha=[0.1,0.2]); got '{text}'")
    try:
        v = json.loads(value, parse_constant=lambda c: c)  # NaN, Infinity stay text: refused below
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"{name}: '{value}' is not a number or a list of numbers") from None
    if not _numeric(v):
        raise argparse.ArgumentTypeError(f"{name}: expected a finite number or a list of them; got '{value}'")
    return name, v


def _numeric(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return math.isfinite(v)
    return isinstance(v, list) and len(v) > 0 and all(_numeric(x) for x in v)


# ---- input and output paths --------------------------------------------------------------
def readable_file(path, what: str, folder_ok: bool = False) -> None:
    """``path`` exists and is a regular file (or a folder where ``folder_ok``): checked before
    JAX starts, and because reading a FIFO or a device would block or never end."""
    from .diagnostics import VemError

    path = Path(path)
    if not path.exists():
        raise VemError("io", f"{what} file '{path}' does not exist")
    if path.exists() and not path.is_file() and not (folder_ok and path.is_dir()):
        kind = "a folder" if path.is_dir() else "not a regular file (a pipe or a device?)"
        raise VemError("io", f"{what} '{path}' is {kind}; expected a file")



def writable_folder(path: Path, option: str) -> None:
    """``path`` is a folder, or can be made one: not a file, under a folder we may write to."""
    _writable(path, option, want_folder=True)


def writable_file(path: Path, option: str) -> None:
    """``path`` can be written as a file: not a folder, under a folder we may write to."""
    _writable(path, option, want_folder=False)


def _writable(path: Path, option: str, want_folder: bool) -> None:
    from .diagnostics import VemError

    path = Path(path)
    if path.exists():
        if want_folder and not path.is_dir():
            raise VemError("io", f"{option} {path}: a file of that name exists; results are written to a folder",
                           hint=f"remove it or choose another {option}")
        if not want_folder and path.is_dir():
            raise VemError("io", f"{option} {path}: that is a folder; expected a file name")
        if not os.access(path, os.W_OK):
            raise VemError("io", f"{option} {path}: not writable (permission denied)")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise VemError("io", f"{option} {path}: '{parent}' is a file, so the folder cannot be made")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VemError("io", f"{option} {path}: cannot create it in '{parent}' (permission denied)")
