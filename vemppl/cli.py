"""The ``vemppl`` command line, one function per verb.

::

    vemppl check MODEL.vem [MODEL.vem ...]          print each model's compiled plan, or its error
    vemppl check --json MODEL.vem                   the same as one JSON document
    vemppl fit MODEL.vem --data D.npz|D.csv [--set K=5] [--out DIR]
    vemppl render MODEL.vem -o model.svg|png
    vemppl updates MODEL.vem                        the derived updates as Markdown
    vemppl predict DIR --data NEW.npz [--plug-in] [--compress auto|yes|no] [--density [exact|mc]]
    vemppl demo [--out DIR]                         fit a shipped model on shipped data

A verb is a function ``verb(args) -> exit code`` registered by an ``_add_<verb>``
function in :func:`build_parser`.  Exit codes: 0 success; 2 bad input (a model error,
rendered once as a code frame by :meth:`VemError.render`, or bad usage); 1 an internal
error of vemppl itself.  No traceback reaches the user unless ``VEMPPL_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .diagnostics import VemError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`vemppl check m.vem | head`): silence the flush at exit
        # (the recipe of the Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INTERNAL
    except VemError as err:  # a verb should catch its own; this keeps the promise of no traceback
        print(err.render(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        if os.environ.get("VEMPPL_DEBUG") == "1":
            raise
        print(_internal(exc), file=sys.stderr)
        return EXIT_INTERNAL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vemppl", description="Variational EM for probabilistic models written in .vem text."
    )
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_check(verbs)
    from . import cli_verbs

    cli_verbs.add_all(verbs)
    return parser


# ---- check ---------------------------------------------------------------------------------
def _add_check(verbs):
    p = verbs.add_parser("check", help="parse and compile models; print the plan or the error")
    p.add_argument("models", nargs="+", metavar="MODEL.vem", help="model files")
    p.add_argument("--json", action="store_true", help="print the result as JSON (errors: kind, file, line, column, message)")
    p.set_defaults(func=check)


def check(args) -> int:
    """Parse and compile each model; print its plan (or IR summary) or its error."""
    from .frontends.parser import load

    status, report = EXIT_OK, {"ok": True, "models": [], "errors": [], "internal_errors": []}
    for path in args.models:
        try:
            ir = load(path)
            plan = describe_plan(ir)
        except VemError as err:
            status = max(status, EXIT_BAD_INPUT)
            report["errors"].append({**err.to_dict(), "file": err.file or str(path)})
            report["models"].append({"file": str(path), "ok": False})
            if not args.json:
                print(err.render(), file=sys.stderr)
            continue
        except Exception as exc:
            if os.environ.get("VEMPPL_DEBUG") == "1":
                raise
            status = max(status, EXIT_INTERNAL)
            report["internal_errors"].append({"file": str(path), "message": _internal(exc)})
            report["models"].append({"file": str(path), "ok": False})
            if not args.json:
                print(f"{path}: {_internal(exc)}", file=sys.stderr)
            continue
        report["models"].append({"file": str(path), "ok": True, "model": ir.name, "plan": plan})
        if not args.json:
            print(plan)
    report["ok"] = status == EXIT_OK
    if args.json:
        print(json.dumps(report, indent=2))
    return status


def describe_plan(ir) -> str:
    """The compiled plan as text; the IR summary when the compiler is not installed."""
    try:
        from .compiler import compile_model
    except ImportError:
        return ir_summary(ir) + "\n(the compiler is not available: this is the IR only)"
    return str(compile_model(ir))


def ir_summary(ir) -> str:
    """Nodes by kind with their shapes."""
    from .frontends.printer import expr_to_text, type_to_text

    lines = [f"model {ir.name}"]
    for kind in ("dim", "const", "data", "param", "latent", "det"):
        nodes = ir.of_kind(kind)
        if not nodes:
            continue
        parts = []
        for n in nodes:
            shape = ir.shapes.get(n.name, ())
            if n.type is not None:
                parts.append(f"{n.name}: {type_to_text(n.type)}")
            elif kind == "const":
                parts.append(f"{n.name} = {expr_to_text(n.value)}")
            elif kind == "dim":
                parts.append(n.name)
            else:
                dists = sorted({d.dist or "=" for d in n.defs})
                parts.append(f"{n.name}[{', '.join(map(str, shape))}] ({', '.join(dists)})" if shape else f"{n.name} ({', '.join(dists)})")
        lines.append(f"  {kind:<7}" + ", ".join(parts))
    return "\n".join(lines)


def _internal(exc: BaseException) -> str:
    return (
        f"internal error: {type(exc).__name__}: {exc}; this is a bug in vemppl, not in your model "
        "(set VEMPPL_DEBUG=1 for the traceback)"
    )


if __name__ == "__main__":
    sys.exit(main())
