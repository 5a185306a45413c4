"""What ``vemppl fit`` and ``vemppl demo`` write beside a fit's results (the ELBO plot and the
plate diagram) and the line that names every file written, shared by both verbs."""

from __future__ import annotations

from pathlib import Path

from .diagnostics import VemError


def write_extras(result, model, out: Path, status) -> tuple[list[str], list[str]]:
    """The ELBO plot and the plate diagram next to the results: (written, skipped with why)."""
    from .render import render

    written, skipped = [], []
    status("drawing the ELBO plot")
    try:
        result.plot_elbo(out / "elbo.png")
        written.append("elbo.png")
    except VemError as err:
        skipped.append(f"elbo.png ({err.message})")
    status("drawing the plate diagram")
    try:
        render(model, out / "model.svg")
        written.append("model.svg")
    except VemError as err:  # no `dot` program: the fit still stands, and the diagram as DOT text
        try:
            render(model, out / "model.dot")
            written.append("model.dot")
            instead = "; wrote model.dot instead"
        except VemError:
            instead = ""
        skipped.append(f"model.svg ({err.message}{instead})")
    return written, skipped


def files_line(out: Path, written: list[str], skipped: list[str]) -> str:
    line = f"results written to {out}/ ({', '.join(written)})"
    return line + "".join(f"\nskipped {s}" for s in skipped)
