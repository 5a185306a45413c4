"""The ``fit``, ``render``, ``updates``, ``predict`` and ``demo`` verbs of the command line.

Each verb is ``verb(args) -> exit code``; a :class:`VemError` is printed once as a code
frame and gives exit status 2 (handled by :func:`vemppl.cli.main`).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from .diagnostics import VemError


def add_all(verbs):
    p = verbs.add_parser("fit", help="fit a model to data by variational EM and save the results")
    p.add_argument("model", metavar="MODEL.vem")
    p.add_argument("--data", required=True, metavar="DATA",
                   help=".npz (one array per data name), .csv, .npy (a model with one data array), or a folder of "
                        "NAME.npy files (memory-mapped: with --batch-size only each batch's rows are read)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="set a dim or const (repeatable)")
    p.add_argument("--out", metavar="DIR", help="results folder (default: results/MODEL)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--max-iter", type=int, default=500)
    p.add_argument("--tol", type=float, default=None,
                   help="relative ELBO change that counts as converged (default 1e-8; 1e-3 for an admixture's "
                        "default schedule)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    g = p.add_argument_group("schedule", "the order of the updates (docs/engine.md, local/global schedules)")
    g.add_argument("--start", choices=("prior", "random-globals"), default=None,
                   help="random-globals: global blocks start at random and the local ones are fitted to them "
                        "first, as variational EM for LDA does (default: chosen from the graph, random-globals for an admixture such as LDA, else prior)")
    g.add_argument("--local-iter", type=int, metavar="L",
                   help="local passes per sweep (at most L with --local-tol; default 1, or 10 with --local-tol)")
    g.add_argument("--local-tol", type=float, metavar="T",
                   help="stop a sweep's local passes once the last local block moves by at most T (relative)")
    g.add_argument("--local-restart", nargs="?", const=True, default=False, type=int, metavar="S",
                   help="with --start random-globals: start the locals afresh at their prior every sweep (or in "
                        "the first S sweeps), as scikit-learn's LDA E-step; a sweep that would lower the ELBO "
                        "carries them instead")
    g.add_argument("--chain", choices=("sequential", "parallel"), default="sequential",
                   help="Markov-chain blocks: forward-backward by a T-step scan, or by a log2(T)-deep tree of "
                        "log-space matrix products for long chains on a GPU (default: sequential)")
    g.add_argument("--compress", choices=("auto", "yes", "no"), default="auto",
                   help="units of the data plate with the same discrete data fitted once, weighted by their count "
                        "(the same fit on fewer rows): auto when a tenth of the rows repeat (default), yes "
                        "whenever any does, no never")
    g = p.add_argument_group("scale", "stochastic VI and several devices (docs/scaling.md)")
    g.add_argument("--batch-size", type=int, metavar="B",
                   help="stochastic VI: each of --max-iter steps fits the local latents of B random units of the "
                        "data plate and moves the globals by a natural-gradient step of size (t + tau)^-kappa")
    g.add_argument("--step-size", default="1.0,0.7", metavar="TAU,KAPPA",
                   help="the SVI step size rho_t = (t + TAU)^-KAPPA (default 1.0,0.7; KAPPA in (0.5, 1])")
    g.add_argument("--plate", metavar="DIM", help="the data plate to subsample or shard (default: the leading dim "
                   "of the data arrays)")
    g.add_argument("--devices", type=int, metavar="N",
                   help="shard the data plate over N devices with jax.sharding (its size a multiple of N); on CPU "
                        "set XLA_FLAGS=--xla_force_host_platform_device_count=N first; several hosts: see "
                        "docs/scaling.md")
    p.set_defaults(func=fit_verb)

    p = verbs.add_parser("render", help="draw the model's plate diagram (graphviz)")
    p.add_argument("model", metavar="MODEL.vem")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="model.svg, model.png, model.pdf or model.dot")
    p.set_defaults(func=render_verb)

    p = verbs.add_parser("updates", help="print the derived variational updates as Markdown")
    p.add_argument("model", metavar="MODEL.vem")
    p.set_defaults(func=updates_verb)

    p = verbs.add_parser("predict", help="re-infer local latents of new data with a saved fit")
    p.add_argument("results", metavar="DIR", help="a folder written by `vemppl fit`")
    p.add_argument("--data", required=True, metavar="DATA")
    p.add_argument("--plug-in", action="store_true", help="globals at their posterior means (log-likelihood)")
    p.add_argument("--compress", choices=("auto", "yes", "no"), default="auto",
                   help="the new data's repeated discrete rows fitted once, weighted by their count, as in fit")
    p.add_argument("--out", metavar="FILE.npz", help="write assignments and probabilities of categorical locals")
    p.add_argument("--density", choices=("auto", "exact", "mc"), nargs="?", const="auto",
                   help="also the per-point log posterior predictive density: exact where the model allows "
                        "(auto, the default; exact fails otherwise) or Monte Carlo (mc)")
    p.set_defaults(func=predict_verb)

    p = verbs.add_parser("demo", help="fit a Gaussian mixture to shipped synthetic data, end to end")
    p.add_argument("--out", default="demo-results", metavar="DIR")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=demo_verb)


# ---- helpers -------------------------------------------------------------------------
def parse_settings(model, items) -> tuple[dict, dict]:
    dims, consts = {}, {}
    kinds = {n.name: n.kind for n in model.nodes.values()}
    for item in items:
        if "=" not in item:
            raise VemError("data", f"--set expects NAME=VALUE; got '{item}'")
        name, value = item.split("=", 1)
        name = name.strip()
        try:
            v = json.loads(value)
        except json.JSONDecodeError:
            raise VemError("data", f"--set {name}: '{value}' is not a number or a JSON list") from None
        if kinds.get(name) == "dim":
            dims[name] = v
        elif kinds.get(name) == "const":
            consts[name] = v
        else:
            raise VemError("data", f"--set {name}: the model has no dim or const '{name}'")
    return dims, consts


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
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (ValueError, OSError) as exc:
            raise VemError("io", f"'{path}' is not a readable .npz file: {exc}") from None
    if path.suffix == ".npy":
        names = [n.name for n in model.of_kind("data")]
        if len(names) != 1:
            raise VemError("io", f"a .npy file holds one array; the model declares {len(names)} data arrays")
        return {names[0]: np.load(path, allow_pickle=False, mmap_mode="r")}
    if path.suffix == ".csv":
        return _read_csv(path, model)
    raise VemError("io", f"unsupported data file '{path.name}': use .npz, .npy or .csv")


def _read_csv(path, model) -> dict:
    """Columns named after data arrays: ``y`` is a vector, ``x[0], x[1], ...`` the columns
    of a matrix.  A file without a header row is the model's one data array."""
    text = path.read_text(encoding="utf-8")
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


def _pair(flag, text) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise VemError("data", f"{flag} expects two numbers TAU,KAPPA; got '{text}'") from None
    return a, b


# ---- verbs ---------------------------------------------------------------------------
def fit_verb(args) -> int:
    from .engine.fit import fit
    from .frontends.parser import load
    from .render import render

    model = load(args.model)
    dims, consts = parse_settings(model, args.set)
    data = read_data(args.data, model)
    scale = {"batch_size": args.batch_size, "step_size": _pair("--step-size", args.step_size), "plate": args.plate,
             "devices": args.devices}
    schedule = {"start": args.start, "local_iter": args.local_iter, "local_tol": args.local_tol,
                "local_restart": args.local_restart, "chain": args.chain,
                "compress": {"auto": None, "yes": True, "no": False}[args.compress]}
    result = fit(model, data, consts=consts, dims=dims, seed=args.seed, restarts=args.restarts,
                 max_iter=args.max_iter, tol=args.tol, progress=None if not args.quiet else False, **scale, **schedule)
    out = Path(args.out or Path("results") / model.name)
    result.save(out)
    result.plot_elbo(out / "elbo.png")
    try:
        render(model, out / "model.svg")
    except VemError as err:  # a missing `dot` must not lose the fit
        print(f"note: diagram not drawn: {err.message}", file=sys.stderr)
    if not args.quiet:
        print(result.summary())
        print(f"results written to {out}/ (manifest.json, arrays.npz, elbo.png, model.svg)")
    return 0


def render_verb(args) -> int:
    from .frontends.parser import load
    from .render import render

    path = render(load(args.model), args.output)
    print(f"wrote {path}")
    return 0


def updates_verb(args) -> int:
    from .frontends.parser import load
    from .render.updates import derived_updates

    print(derived_updates(load(args.model)), end="")
    return 0


def predict_verb(args) -> int:
    from .results.fit import load_results
    from .results.io import _atomic_write

    fit = load_results(args.results)
    data = read_data(args.data, fit.model)
    pred = fit.predict(data, plug_in=args.plug_in, compress={"auto": None, "yes": True, "no": False}[args.compress])
    what = "log-likelihood (plug-in)" if args.plug_in else "held-out ELBO"
    print(f"{what}: {pred.elbo:.6f} ({pred.log_likelihood_per_point:.6f} per point, {pred.n_points} points)")
    density = None
    if args.density:
        density = fit.predictive_density(data, exact={"auto": None, "exact": True, "mc": False}[args.density])
        how = "exact" if density.method == "exact" else f"Monte Carlo ({density.reason})" if density.reason else "Monte Carlo"
        print(f"log predictive density [{how}]: {density.sum():.6f} ({density.mean():.6f} per point)")
    if args.out:
        arrays = {}
        if density is not None:
            arrays["log_predictive_density"] = np.asarray(density)
        for j, mu in pred.state.mu.items():
            if hasattr(mu, "onehot"):
                arrays[f"{j}_probabilities"] = np.asarray(mu.onehot)
                arrays[f"{j}_assignments"] = np.asarray(mu.onehot).argmax(-1)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        _atomic_write(Path(args.out), buf.getvalue())
        print(f"wrote {args.out}")
    return 0


def demo_verb(args) -> int:
    from .demo import run

    run(args.out, quiet=args.quiet)
    return 0
