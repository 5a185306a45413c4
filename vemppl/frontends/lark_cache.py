"""The ``.vem`` parser's LALR tables kept beside the compiled programs, across processes (issue #21).

Lark builds its LALR(1) tables from ``grammar/vem.lark`` in every process that parses a model:
0.035-0.04 s of each ``vemppl fit`` (a quiet machine), 0.004 s to read them back.  Where vemppl
keeps compiled programs across processes (``_compile_cache.kept_folder``: the command line's user
folder, ``VEMPPL_CACHE_DIR``, ``vemppl.use_compilation_cache``), the built parser is kept in the
same folder, ``vemppl-parser-<key>.lark``, in Lark's own serialised form (``Lark.save``, a
pickle: the folder is the user's own, as are the executables JAX reads back from it).  JAX's
eviction reads only its own ``-cache`` and ``-atime`` entries and leaves this one alone.  This
process's temporary folder, or none, keeps nothing: the parser is built as before.

The key is a SHA-256 of everything the tables depend on: the grammar's text, Lark's options, the
terminals the post-lexer always accepts, and the versions of Lark and Python (pickle's).  The
file's first line repeats the key; a file whose first line differs, or that cannot be read or
loaded, is a miss, and the parser is built and written again.  Writes are atomic (a temporary
file in the folder, then ``os.replace``); a folder that cannot be written keeps nothing, silently.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import lark
from lark import Lark

from .. import _compile_cache

#: The file format; an entry of another format has another key, so is never read.
FORMAT = 1
#: The options Lark takes again when it loads a saved parser (its own cache passes the same:
#: ``lark.lark._LOAD_ALLOWED_OPTIONS``); the others are read from the file.
_AT_LOAD = ("postlex", "transformer", "lexer_callbacks", "use_bytes", "debug", "g_regex_flags", "regex",
            "propagate_positions", "tree_class")


def parser_key(grammar: str, options: dict, postlex) -> str:
    """The entry's key: the grammar, the options, the post-lexer's always-accepted terminals,
    Lark's and Python's versions."""
    text = "\n".join([
        f"vemppl-parser {FORMAT}", grammar, repr(sorted(options.items())),
        repr(tuple(getattr(postlex, "always_accept", ()))),
        f"lark {lark.__version__} python {sys.version_info[:3]}",
    ])
    return hashlib.sha256(text.encode()).hexdigest()


def path_for(key: str) -> Path | None:
    """Where the entry of ``key`` is kept; None where no folder is kept across processes."""
    folder = _compile_cache.kept_folder()
    return Path(folder) / f"vemppl-parser-{key}.lark" if folder else None


def build(grammar: str, postlex, **options) -> Lark:
    """``Lark(grammar, postlex=postlex, **options)``, read from the kept folder when it holds the
    entry, else built (and written there)."""
    key = parser_key(grammar, options, postlex)
    path = path_for(key)
    parser = _read(path, key, postlex, options) if path is not None else None
    if parser is None:
        parser = Lark(grammar, postlex=postlex, **options)
        if path is not None:
            _write(path, key, parser)
    return parser


def _read(path: Path, key: str, postlex, options: dict) -> Lark | None:
    again = {k: v for k, v in options.items() if k in _AT_LOAD}
    try:
        with open(path, "rb") as f:
            if f.readline().rstrip(b"\n") != key.encode():
                return None
            return Lark.__new__(Lark)._load(f, postlex=postlex, **again)
    except Exception:  # noqa: BLE001 - missing, truncated, another Lark's: a miss, built again
        return None


def _write(path: Path, key: str, parser: Lark) -> None:
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vemppl-parser-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(key.encode() + b"\n")
            parser.save(f, exclude_options=_AT_LOAD)
        os.replace(tmp, path)
    except Exception:  # noqa: BLE001 - a folder that cannot be written (or a parser that cannot be saved) keeps nothing
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


__all__ = ["build", "parser_key", "path_for"]
