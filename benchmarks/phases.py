"""Helpers shared by the benchmark scripts: run each phase in its own process (so each phase's
peak resident memory is its own), write results atomically, load a sibling script."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def child(script: str, a, phase: str) -> dict:
    """Run ``script --phase phase`` with the parsed arguments ``a``; its last stdout line is JSON."""
    cmd = [sys.executable, script, "--phase", phase] + [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items()
                                                        if k not in ("phase", "quick")]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def lda_benchmark():
    """benchmarks/lda.py, loaded under another name (``lda`` is also the package it reads Reuters from)."""
    spec = importlib.util.spec_from_file_location("lda_benchmark", Path(__file__).resolve().parent / "lda.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
