"""Sphinx configuration of vemppl's Python API reference.

Built by ``.ci/test`` with ``sphinx-build -W --keep-going -b html docs/api <out>`` (warnings are
errors), so a public name without a docstring, or a docstring that does not render, fails CI.
Nothing here needs the network.  The pages name objects (``autofunction:: vemppl.fit``); the
signatures and docstrings come from the code, so they cannot drift from it;
``tests/test_docs.py`` checks that every name in ``vemppl.__all__`` is on a page.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the checkout's vemppl, installed or not

project = "vemppl"
author = "The vemppl developers"
copyright = "The vemppl developers"  # noqa: A001 (Sphinx's name)

import vemppl  # noqa: E402

release = version = vemppl.__version__

extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
