"""Docs check: every ``vem`` code block in README.md and docs/ parses, and every model in
models/ appears in the gallery."""

import importlib.util
import re
from pathlib import Path

import pytest

import vemppl as vp

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    (doc.name, i, block)
    for doc in DOCS
    for i, block in enumerate(re.findall(r"```vem\n(.*?)```", doc.read_text(), flags=re.S))
]


@pytest.mark.parametrize("doc,i,block", BLOCKS, ids=[f"{d}-{i}" for d, i, _ in BLOCKS])
def test_vem_blocks_parse(doc, i, block):
    vp.parse(block, filename=f"{doc}#block{i}")


def test_gallery_lists_every_model():
    gallery = (ROOT / "docs/gallery.md").read_text()
    for path in (ROOT / "models").glob("*.vem"):
        assert f"## {path.stem}" in gallery, f"{path.name} missing from docs/gallery.md (run docs/build_gallery.py)"
        assert (ROOT / "docs/gallery" / f"{path.stem}.png").exists()


def test_gallery_is_current():
    """docs/gallery.md is what docs/build_gallery.py gives today: every model's plan and
    derived updates render (a crash in the VAE's updates went unnoticed until rebuilt)."""
    spec = importlib.util.spec_from_file_location("build_gallery", ROOT / "docs/build_gallery.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "docs/gallery.md").read_text() == mod.gallery_text(), "run python docs/build_gallery.py"
