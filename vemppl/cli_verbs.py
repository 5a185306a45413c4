"""The ``fit``, ``render``, ``updates``, ``predict`` and ``demo`` verbs of the command line.

Each verb is ``verb(args) -> exit code``; a :class:`VemError` is printed once as a code
frame and gives exit status 2 (handled by :func:`vemppl.cli.main`).  Options are checked as
they are parsed (``cli_args.py``); output paths are checked before any fitting; NumPy and JAX
are imported inside the verbs, so ``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import os
import re
import sys
from pathlib import Path

from . import cli_args
from .cli_output import files_line, write_extras
from .diagnostics import VemError


def add_all(verbs):
    p = verbs.add_parser("fit", help="fit a model to data by variational EM and save the results")
    p.add_argument("model", metavar="MODEL.vem", help="the model file")
    p.add_argument("--data", required=True, metavar="DATA",
                   help=".npz (one array per data name), .csv, .npy (a model with one data array), or a folder of "
                        "NAME.npy files (memory-mapped: with --batch-size only each batch's rows are read)")
    p.add_argument("--set", action="append", default=[], type=cli_args.setting, metavar="NAME=VALUE",
                   help="set a dim or const of the model: a number or a JSON list of numbers (repeatable)")
    p.add_argument("--out", metavar="DIR", type=Path,
                   help="results folder (default: results/MODEL); checked before the fit: not an existing file")
    p.add_argument("--seed", type=cli_args.whole(0, cli_args.MAX_SEED), default=0,
                   help="random seed of the initialisation, 0 to 2^32-1; the starts of --restarts and of the "
                        "screened starts are drawn in turn from it (default 0)")
    p.add_argument("--restarts", type=cli_args.whole(1), default=1,
                   help="fit from R initialisations and keep the one with the highest ELBO (default 1)")
    p.add_argument("--max-iter", type=cli_args.whole(1), default=500,
                   help="at most this many sweeps (iterations) per restart (default 500)")
    p.add_argument("--tol", type=cli_args.finite(0.0), default=None,
                   help="stop when the ELBO change and the gain its rate forecasts are both at most T relative to the ELBO "
                        "(docs/engine.md, When a fit stops), a number >= 0 (default 1e-8; 1e-3 for "
                        "an admixture's default schedule; 1e-10 for a fit on a linear-Gaussian plate's moments)")
    p.add_argument("--quiet", action="store_true", help="no status line, progress bar or summary")
    p.add_argument("--max-memory", type=cli_args.memory_size, metavar="SIZE",
                   help="refuse a model whose variational state would exceed SIZE (64G, 512M, bytes; default: "
                        "the memory available now; VEMPPL_MAX_MEMORY sets it too)")
    p.add_argument("--sweep", metavar="NAME=A:B",
                   help="fit every value A..B (or a,b,c) of a const or dim, each with --restarts, and keep the "
                        "chosen one; also writes sweep.json and sweep.png (docs/model-selection.md)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not keep compiled programs in the cache folder (default: ~/.cache/vemppl/xla, or "
                        "$XDG_CACHE_HOME/vemppl/xla; VEMPPL_CACHE_DIR sets another)")
    g = p.add_argument_group("schedule", "the order of the updates (docs/engine.md, local/global schedules)")
    g.add_argument("--start", choices=("prior", "random-globals"), default=None,
                   help="random-globals: global blocks start at random and the local ones are fitted to them "
                        "first, as variational EM for LDA does (default: chosen from the graph, random-globals for "
                        "an admixture such as LDA, else prior)")
    g.add_argument("--local-iter", type=cli_args.whole(1), metavar="L",
                   help="local passes per sweep (at most L with --local-tol; default 1, or 10 with --local-tol)")
    g.add_argument("--local-tol", type=cli_args.finite(0.0), metavar="T",
                   help="stop a sweep's local passes once the last local block moves by at most T (relative)")
    g.add_argument("--local-restart", nargs="?", const=True, default=False, type=cli_args.whole(0), metavar="S",
                   help="with --start random-globals: start the locals afresh at their prior every sweep (or in "
                        "the first S sweeps), as scikit-learn's LDA E-step; a sweep that would lower the ELBO "
                        "carries them instead")
    g.add_argument("--screen", type=cli_args.whole(1), metavar="R",
                   help="with --restarts 1: run R seeded starts for 5 sweeps each and continue the one with the "
                        "highest ELBO (default: 4 for a mixture or chain seeded by k-means++, else 1)")
    g.add_argument("--chain", choices=("sequential", "parallel"), default="sequential",
                   help="Markov-chain blocks: forward-backward by a T-step scan, or by a log2(T)-deep tree of "
                        "log-space matrix products for long chains on a GPU (default: sequential)")
    g.add_argument("--compress", choices=("auto", "yes", "no"), default="auto",
                   help="units of the data plate with the same discrete data fitted once, weighted by their count "
                        "(the same fit on fewer rows): auto when a tenth of the rows repeat (default), yes "
                        "whenever any does, no never")
    g = p.add_argument_group("scale", "stochastic VI and several devices (docs/scaling.md)")
    g.add_argument("--batch-size", type=cli_args.whole(1), metavar="B",
                   help="stochastic VI: each of --max-iter steps fits the local latents of B random units of the "
                        "data plate and moves the globals by a natural-gradient step of size (t + tau)^-kappa")
    g.add_argument("--step-size", type=cli_args.step_size, metavar="TAU,KAPPA",  # default: vp.svi's (1.0, 0.7)
                   help="the SVI step size rho_t = (t + TAU)^-KAPPA (default 1.0,0.7; TAU >= 0, KAPPA in (0.5, 1])")
    g.add_argument("--plate", metavar="DIM", help="the data plate to subsample or shard (default: the leading dim "
                   "of the data arrays)")
    g.add_argument("--devices", type=cli_args.whole(1), metavar="N",
                   help="shard the data plate over N devices with jax.sharding (its size a multiple of N); on CPU "
                        "set XLA_FLAGS=--xla_force_host_platform_device_count=N first; several hosts: see "
                        "docs/scaling.md")
    p.set_defaults(func=fit_verb)

    p = verbs.add_parser("render", help="draw the model's plate diagram (graphviz)")
    p.add_argument("model", metavar="MODEL.vem", help="the model file")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="model.svg, model.png, model.pdf or model.dot")
    p.set_defaults(func=render_verb)

    p = verbs.add_parser("updates", help="print the derived variational updates as Markdown")
    p.add_argument("model", metavar="MODEL.vem", help="the model file")
    p.set_defaults(func=updates_verb)

    p = verbs.add_parser("predict", help="re-infer local latents of new data with a saved fit")
    p.add_argument("results", metavar="DIR", help="a folder written by `vemppl fit`")
    p.add_argument("--data", required=True, metavar="DATA", help="new data, in the formats of `vemppl fit --data`")
    p.add_argument("--plug-in", action="store_true", help="globals at their posterior means (log-likelihood)")
    p.add_argument("--compress", choices=("auto", "yes", "no"), default="auto",
                   help="the new data's repeated discrete rows fitted once, weighted by their count, as in fit")
    p.add_argument("--out", metavar="FILE.npz", type=Path,
                   help="write assignments and probabilities of categorical locals, the means of the other locals "
                        "and, with --density, the per-point densities (an .npz name, checked before predicting)")
    p.add_argument("--density", choices=("auto", "exact", "mc"), nargs="?", const="auto",
                   help="also the per-point log posterior predictive density: exact where the model allows "
                        "(auto, the default; exact fails otherwise) or Monte Carlo (mc)")
    p.set_defaults(func=predict_verb)

    p = verbs.add_parser("demo", help="fit a Gaussian mixture to shipped synthetic data, end to end")
    p.add_argument("--out", default=Path("demo-results"), type=Path, metavar="DIR",
                   help="the folder for the model, data and results (default: demo-results)")
    p.add_argument("--quiet", action="store_true", help="no status line and no summary")
    p.add_argument("--no-cache", action="store_true", help="do not keep compiled programs in the cache folder")
    p.set_defaults(func=demo_verb)


# ---- helpers -------------------------------------------------------------------------
def read_data(path, model) -> dict:
    """Arrays by name from a data file (``cli_data.read_data``; NumPy is imported only here)."""
    from .cli_data import read_data as read

    return read(path, model)


def parse_settings(model, items) -> tuple[dict, dict]:
    """``--set`` pairs (checked by :func:`cli_args.setting`) split into dims and consts."""
    dims, consts = {}, {}
    kinds = {n.name: n.kind for n in model.nodes.values()}
    for name, v in items:
        if kinds.get(name) == "dim":
            dims[name] = v
        elif kinds.get(name) == "const":
            consts[name] = v
        else:
            names = sorted(n for n, k in kinds.items() if k in ("dim", "const"))
            lower = {n.lower(): n for n in names}
            close = [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=1)]
            hint = f"did you mean '{close[0]}'?" if close else f"its dims and consts: {', '.join(names) or 'none'}"
            raise VemError("data", f"--set {name}: the model has no dim or const '{name}'", hint=hint)
    return dims, consts


@contextlib.contextmanager
def _set_arrays_blamed(consts):
    """A NumPy shape error while ``--set`` gave arrays is the user's: name the settings.

    A scalar ``const`` may be set to an array (``--set alpha=[...]``); whether its length
    fits is known only where the model uses it, so a mismatch surfaces as NumPy's
    broadcasting error inside the fit.
    """
    arrays = [k for k, v in consts.items() if isinstance(v, list)]
    try:
        yield
    except ValueError as exc:
        if arrays and ("broadcast" in str(exc) or "shape" in str(exc)):
            shown = ", ".join(f"--set {k}=" + json.dumps(consts[k]) for k in arrays)
            raise VemError("data", f"{shown}: the shape does not fit where the model uses it ({exc})",
                           hint="give a number, or a list as long as the dim it runs over") from None
        raise


# ---- verbs ---------------------------------------------------------------------------
def fit_verb(args) -> int:
    from .cli_runtime import setup_cache

    out = Path(args.out) if args.out else None
    if out is not None:
        cli_args.writable_folder(out, "--out")  # before the fit: a result is never lost
    setup_cache(args.no_cache)  # before JAX is imported (by the parser's families)
    if args.max_memory is None:
        return _fit_verb(args, out)
    # The static size pass reads its limit from the environment (ir/memory.py); set for this
    # command only, so main() called in a process (tests, notebooks) leaves the process as it was.
    saved = os.environ.get("VEMPPL_MAX_MEMORY")
    os.environ["VEMPPL_MAX_MEMORY"] = args.max_memory
    try:
        return _fit_verb(args, out)
    except VemError as err:  # the limit the user gave is the option, not the variable set for it
        err.message = err.message.replace(f"(VEMPPL_MAX_MEMORY={args.max_memory})", f"(--max-memory {args.max_memory})")
        raise
    finally:
        if saved is None:
            os.environ.pop("VEMPPL_MAX_MEMORY", None)
        else:
            os.environ["VEMPPL_MAX_MEMORY"] = saved


def _fit_verb(args, out) -> int:
    from .cli_runtime import CacheCounter, Status, imports, preload

    cli_args.readable_file(args.model, "model")
    cli_args.readable_file(args.data, "data", folder_ok=True)
    with Status(not args.quiet) as status:
        status("starting JAX")
        with imports():
            from .api import fit
            from .engine.algorithms import from_keywords
            from .frontends.parser import load

        status(f"reading {args.model}")
        model = load(args.model)
        dims, consts = parse_settings(model, args.set)
        out = out or Path("results") / model.name
        cli_args.writable_folder(out, "--out")
        status(f"reading {args.data}")
        data = read_data(args.data, model)
        cache = CacheCounter()
        scale = {"batch_size": args.batch_size, "step_size": args.step_size, "plate": args.plate,
                 "devices": args.devices}
        schedule = {"start": args.start, "local_iter": args.local_iter, "local_tol": args.local_tol,
                    "local_restart": args.local_restart, "chain": args.chain, "screen": args.screen,
                    "compress": {"auto": None, "yes": True, "no": False}[args.compress]}
        status("compiling and fitting (the first sweep compiles)")
        preload("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "vemppl.render")
        swept = []
        with _set_arrays_blamed(consts):
            if args.sweep:  # selection.py: the chosen value's best fit is saved as usual
                from .selection import parse_sweep, select

                name, values = parse_sweep(args.sweep, {n.name: n.kind for n in model.nodes.values()})
                try:
                    sel = select(model, data, restarts=args.restarts, seed=args.seed, consts=consts, dims=dims,
                                 max_iter=args.max_iter, tol=args.tol, **scale, **schedule, **{name: values})
                except VemError as err:  # a swept value is no --set value (docs/cli.md: the command line's words)
                    err.message = re.sub(rf"'{name}' \(from (?:consts|dims)=\)", f"'{name}' (from --sweep)", err.message)
                    err.message = re.sub(rf"\b{name} = (\S+) from (?:consts|dims)=\{{'{name}': [^}}]*\}}",
                                         rf"{name} = \1 from --sweep", err.message)
                    raise
                out.mkdir(parents=True, exist_ok=True)
                sel.save_json(out / "sweep.json")
                sel.plot(out / "sweep.png")
                swept = ["sweep.json", "sweep.png"]
                result = sel.fit
            else:
                result = fit(model, data, consts=consts, dims=dims, seed=args.seed, restarts=args.restarts,
                             max_iter=args.max_iter, tol=args.tol, progress=None if not args.quiet else False,
                             algorithm=from_keywords({**scale, **schedule}))
        status(f"writing results to {out}/")
        result.save(out)
        written, skipped = write_extras(result, model, out, status)
        written = swept + list(written)
    if args.quiet:
        for s in skipped:
            print(f"note: skipped {s}", file=sys.stderr)
        return 0
    if args.sweep:
        print("\n".join(f"{sel.name} = {r['value']}: ELBO {r['elbo']:.6g}" for r in sel.table))
        print(f"chosen {sel.name} = {sel.best}")
    print(result.summary())
    if cache.describe():
        print(cache.describe())
    from .results.io import arrays_file  # arrays-<hash>.npz: named by the manifest (results/io.py)

    print(files_line(out, ["manifest.json", arrays_file(out), *written], skipped))
    return 0


def render_verb(args) -> int:
    cli_args.readable_file(args.model, "model")
    from .frontends.parser import load
    from .render import render

    path = render(load(args.model), args.output)
    print(f"wrote {path}")
    return 0


def updates_verb(args) -> int:
    cli_args.readable_file(args.model, "model")
    from .frontends.parser import load
    from .render.updates import derived_updates

    print(derived_updates(load(args.model)).rstrip("\n"))  # one final newline
    return 0


def predict_verb(args) -> int:
    if args.out is not None:
        cli_args.writable_file(args.out, "--out")  # before predicting
        if Path(args.out).suffix != ".npz":  # np.savez's format: a name without .npz was written as given
            raise VemError("io", f"--out {args.out}: predictions are written as an .npz archive; "
                                 "give a name ending in .npz")
    cli_args.readable_file(args.data, "data", folder_ok=True)
    if not Path(args.results).is_dir():
        raise VemError("io", f"results folder '{args.results}' does not exist" if not Path(args.results).exists()
                       else f"'{args.results}' is not a folder; expected the results folder `vemppl fit` wrote")
    from .cli_runtime import Status, imports, setup_cache

    setup_cache(False)
    with Status(True) as status:
        status("starting JAX")
        with imports():
            import numpy as np

            from .results.fit import load_results
            from .results.io import _atomic_write

        status(f"reading {args.results}")
        fit = load_results(args.results)
        data = read_data(args.data, fit.model)
        status("compiling and inferring the local latents")
        pred = fit.predict(data, plug_in=args.plug_in,
                           compress={"auto": None, "yes": True, "no": False}[args.compress])
    what = "log-likelihood (plug-in)" if args.plug_in else "held-out ELBO"
    stopped = "" if pred.converged else f"; not converged after {pred.iterations} sweeps"
    print(f"{what}: {pred.elbo:.6f} ({pred.log_likelihood_per_point:.6f} per point, {pred.n_points} points){stopped}")
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
            else:  # a continuous local (factor analysis's z[n]): its posterior mean
                arrays[f"{j}_mean"] = np.asarray(pred.posterior[j].mean)
        if not arrays:  # an empty archive would say nothing was inferred without a word
            raise VemError("data", f"--out {args.out}: nothing to write: the model has no local latents to "
                                   "re-infer; add --density to write the per-point log predictive densities")
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        _atomic_write(Path(args.out), buf.getvalue())
        print(f"wrote {args.out}")
    return 0


def demo_verb(args) -> int:
    cli_args.writable_folder(args.out, "--out")
    from .cli_runtime import setup_cache
    from .demo import run

    setup_cache(args.no_cache)
    run(args.out, quiet=args.quiet)
    return 0
