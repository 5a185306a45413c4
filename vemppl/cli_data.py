"""Reading data files for the command line: ``.npz``, ``.npy``, ``.csv`` or a folder of ``.npy``.

Every failure to read is a :class:`VemError` of kind ``io`` naming the file (exit status 2):
a damaged or truncated file is the user's to fix, never an internal error.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .diagnostics import VemError


def read_data(path, model) -> dict:
    """Arrays by name from .npz, or from .csv (columns `x` or `x[0]`, `x[1]`, ...)."""
    path = Path(path)
    if not path.exists():
        raise VemError("io", f"data file '{path}' does not exist")
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise VemError("io", f"the folder '{path}' holds no .npy files. Expected one NAME.npy per data array")
        try:
            return {f.stem: np.load(f, allow_pickle=False, mmap_mode="r") for f in files}
        except (ValueError, OSError) as exc:
            raise VemError("io", f"'{path}': a .npy file is not readable: {exc}") from None
    if path.suffix == ".npz":
        # np.load reads a file by its first bytes, not its name: a text file named .npz was
        # "pickled data" to it, an .npy file an array (an internal error here).  A zip's first
        # bytes with a damaged rest is a truncated archive: an io error below.
        if not _starts_as_zip(path):
            raise VemError("data", f"'{path}' is not an .npz archive (a zip of .npy files, as np.savez writes): "
                                   "save the arrays with np.savez, or give an .npy or .csv file its own suffix")
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: _npz_member(path, npz, k) for k in npz.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise VemError("io", f"'{path}' is not a readable .npz file (damaged or truncated?): {exc}") from None
    if path.suffix == ".npy":
        names = [n.name for n in model.of_kind("data")]
        if len(names) != 1:
            raise VemError("io", f"a .npy file holds one array; the model declares {len(names)} data arrays")
        try:
            return {names[0]: np.load(path, allow_pickle=False, mmap_mode="r")}
        except (ValueError, OSError, EOFError) as exc:
            raise VemError("io", f"'{path}' is not a readable .npy file (damaged or truncated?): {exc}") from None
    if path.suffix == ".csv":
        return _read_csv(path, model)
    raise VemError("io", f"unsupported data file '{path.name}': use .npz, .npy or .csv")


def _npz_member(path, npz, name):
    """One array of an .npz archive; an array of Python objects (``np.savez`` of a ragged list
    or of mixed types stores one, readable only by unpickling) is named, not called damaged."""
    try:
        return npz[name]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise
        raise VemError("data", f"'{path}': array '{name}' holds Python objects (dtype=object), which are never "
                               "unpickled; save it as a numeric array of one shape "
                               "(np.asarray(x, dtype=float) or int)") from None


def _starts_as_zip(path) -> bool:
    """Whether the file begins as a zip archive does (a local file header, or an empty zip's
    end record), as np.load tells an .npz from an .npy or a pickle."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise VemError("io", f"'{path}' is not readable: {exc.strerror or exc}") from None
    return head in (b"PK\x03\x04", b"PK\x05\x06")


def _read_csv(path, model) -> dict:
    """Columns named after data arrays: ``y`` is a vector, ``x[0], x[1], ...`` the columns
    of a matrix.  A file without a header row is the model's one data array."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise VemError("io", f"'{path}' is not a text file in UTF-8: {exc}") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise VemError("io", f"'{path}' is empty")
    names = [n.name for n in model.of_kind("data")]
    header = [h.strip() for h in rows[0]]
    has_header = not all(_is_number(h) for h in header)
    body = rows[1:] if has_header else rows
    for line, r in enumerate(body, start=2 if has_header else 1):
        if len(r) != len(header):
            raise VemError("io", f"'{path}' line {line}: {len(r)} fields, but the first row has {len(header)}")
        bad = next((c for c in r if c.strip() and not _is_number(c)), None)
        if bad is not None:
            raise VemError("io", f"'{path}' line {line}: '{bad}' is not a number")
    values = np.array([[float(c) if c.strip() else np.nan for c in r] for r in body], dtype=float).reshape(len(body), len(header))
    if not has_header:
        if len(names) != 1:
            raise VemError("io", f"'{path}' has no header row; name its columns after the data arrays {names}")
        return {names[0]: values if values.shape[1] > 1 else values[:, 0]}
    columns: dict[str, list[tuple[int | None, np.ndarray]]] = {}
    for i, h in enumerate(header):
        base, _, rest = h.partition("[")
        if base.strip() not in names:
            raise VemError("io", f"'{path}': column '{h}' names no data array of the model; expected one of {names}")
        position = None
        if rest:
            try:
                position = int(rest.rstrip("]").strip())
            except ValueError:
                raise VemError("io", f"'{path}': column '{h}': expected NAME or NAME[i] with an integer i") from None
        columns.setdefault(base.strip(), []).append((position, values[:, i]))
    out = {}
    for name, cols in columns.items():
        if len(cols) == 1 and cols[0][0] is None:
            out[name] = cols[0][1]
            continue
        positions = [p for p, _ in cols]
        if None in positions or sorted(positions) != list(range(len(cols))):
            raise VemError("io", f"'{path}': the columns of '{name}' must be {name}[0] ... {name}[{len(cols) - 1}], each once")
        out[name] = np.stack([c for _, c in sorted(cols, key=lambda pc: pc[0])], axis=1)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
