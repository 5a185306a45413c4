"""Every shipped model's header shows only what a user needs: no tuning option (issue #21).

The tuning options are read off the CLI's own ``fit`` parser (every option but the data, the
sizes, the output folder and the quiet/cache switches) and off ``vp.cavi``'s fields and
``fit``'s keywords, so an option added later is covered without editing this test.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[1] / "models"
#: What a user may need on the command line: the data, sizes/constants, where results go.
NEEDED = {"--data", "--set", "--out", "--quiet", "--no-cache", "--max-memory", "--help", "-h"}


def tuning_words() -> tuple[set[str], set[str]]:
    """(CLI options, Python keywords) that tune a fit rather than describe the data."""
    from vemppl.cli import build_parser
    from vemppl.engine.algorithms import Cavi, Svi

    fit = build_parser().verbs["fit"]
    flags = {s for a in fit._actions for s in a.option_strings} - NEEDED
    keywords = {f.name for c in (Cavi, Svi) for f in dataclasses.fields(c)}
    keywords |= {"tol", "max_iter", "restarts", "seed", "algorithm", "init"}
    return flags, keywords


def tuning_in(header: str) -> list[str]:
    flags, keywords = tuning_words()
    found = [f for f in sorted(flags) if re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", header)]
    found += [k for k in sorted(keywords) if re.search(rf"\b{k}\s*=", header)]
    return found


def header(path: Path) -> str:
    """The comment lines before the ``model`` line, and the comments on lines after it."""
    text = path.read_text()
    top = text.split("\nmodel ")[0]
    inline = [line.split("#", 1)[1] for line in text.splitlines()[top.count("\n") + 1:] if "#" in line]
    return top + "\n" + "\n".join(inline)


def test_the_detector_finds_the_options_lda_used_to_need():
    old = ("# lda.vem\n#   vemppl fit models/lda.vem --data tokens.npz --start random-globals --local-tol 1e-3 "
           "--local-restart 25 --tol 1e-3\n# or fit(..., algorithm=vp.cavi(local_restart=25))")
    assert tuning_in(old) == ["--local-restart", "--local-tol", "--start", "--tol", "algorithm", "local_restart"]
    assert tuning_in("#   vemppl fit models/lda.vem --data tokens.npz --set K=20") == []


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.vem")), ids=lambda p: p.name)
def test_no_shipped_model_asks_for_a_tuning_option(path):
    assert tuning_in(header(path)) == []
