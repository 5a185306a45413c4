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
function in :func:`build_parser`.  Exit codes: 0 success; 2 anything the user can fix (a
model error, rendered once as a code frame by :meth:`VemError.render`; a bad option, checked
at parse time; an unreadable file; memory running out); 1 only a bug of vemppl itself;
130 and 143 after SIGINT and SIGTERM.  No traceback reaches the user unless ``VEMPPL_DEBUG=1``.

Parsing the arguments imports neither JAX nor NumPy: ``--help``, ``--version`` and argument
errors answer at once (``cli_args.py``).
"""

from __future__ import annotations

import json
import os
import sys

from . import __version__
from .cli_args import Parser
from .cli_runtime import (
    EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, Terminated, as_program, classify, debug, hard_exit, install_handlers,
    internal, quick_exit, render_error, say_stopped,
)
from .diagnostics import VemError


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        as_program()
    status = _main(argv)
    if argv is None:  # the program itself, not a caller of main(): see cli_runtime.quick_exit
        quick_exit(status)
    return status


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    first = (sys.argv[1:] if argv is None else argv)[:1]
    if first and first[0].startswith("-") and first[0] not in parser._option_string_actions:
        parser.unrecognized(first)  # `vemppl --verison`: not "COMMAND is required"
    args, extras = parser.parse_known_args(argv)
    if extras:  # reported by the verb's parser: its usage, and the nearest spelling of each
        parser.verbs.get(args.command, parser).unrecognized(extras)
    restore = install_handlers()
    try:
        return args.func(args)
    except (KeyboardInterrupt, Terminated) as exc:
        status = 143 if isinstance(exc, Terminated) else 130
        say_stopped(status)
        if argv is None:  # the program itself, not a caller of main(): see cli_runtime.hard_exit
            hard_exit(status)
        return status
    except BrokenPipeError:
        # The reader went away (`vemppl check m.vem | head`): silence the flush at exit
        # (the recipe of the Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INTERNAL
    except Exception as exc:
        known = classify(exc)  # VemError, a refused file, memory: the user's to fix
        if known is not None and not debug():
            print(known[1], file=sys.stderr)
            return known[0]
        if debug():
            raise
        print(internal(exc), file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        restore()


def build_parser() -> Parser:
    """The parser; ``parser.verbs`` holds each verb's sub-parser by name."""
    parser = Parser(prog="vemppl", description="Variational EM for probabilistic models written in .vem text.")
    parser.add_argument("--version", action="version", version=f"vemppl {__version__}")
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    _add_check(verbs)
    from . import cli_verbs

    cli_verbs.add_all(verbs)
    parser.verbs = dict(verbs.choices)
    return parser


# ---- check ---------------------------------------------------------------------------------
def _add_check(verbs):
    p = verbs.add_parser("check", help="parse and compile models; print the plan or the error")
    p.add_argument("models", nargs="+", metavar="MODEL.vem", help="model files")
    p.add_argument("--json", action="store_true", help="print the result as JSON (errors: kind, file, line, column, message)")
    p.set_defaults(func=check)


def check(args) -> int:
    """Parse and compile each model; print its plan (or IR summary) or its error."""
    from .cli_args import readable_file

    status, report = EXIT_OK, {"ok": True, "models": [], "errors": [], "internal_errors": []}
    for path in args.models:
        try:
            readable_file(path, "model")
            ir = _load(path, status_line=not args.json)
            plan = describe_plan(ir)
        except VemError as err:
            status = max(status, EXIT_BAD_INPUT)
            report["errors"].append({**err.to_dict(), "file": err.file or str(path)})
            report["models"].append({"file": str(path), "ok": False})
            if not args.json:
                print(render_error(err), file=sys.stderr)
            continue
        except Exception as exc:
            if debug():
                raise
            known = classify(exc)
            if known is not None:  # an unreadable file, say: the user's to fix
                status = max(status, known[0])
                report["errors"].append({"kind": "io", "file": str(path), "message": known[1]})
                report["models"].append({"file": str(path), "ok": False})
                if not args.json:
                    print(f"{path}: {known[1]}", file=sys.stderr)
                continue
            status = max(status, EXIT_INTERNAL)
            report["internal_errors"].append({"file": str(path), "message": internal(exc)})
            report["models"].append({"file": str(path), "ok": False})
            if not args.json:
                print(f"{path}: {internal(exc)}", file=sys.stderr)
            continue
        report["models"].append({"file": str(path), "ok": True, "model": ir.name, "plan": plan})
        if not args.json:
            print(plan.rstrip("\n"))  # one final newline, whatever the plan's text ends with
    report["ok"] = status == EXIT_OK
    if args.json:
        print(json.dumps(report, indent=2))
    return status


def _load(path, status_line: bool):
    """The model's IR; the first call imports the parser, and with it JAX (a status line says so)."""
    from .cli_runtime import Status

    with Status(status_line and "vemppl.frontends.parser" not in sys.modules) as line:
        line("starting JAX")
        from .frontends.parser import load

    return load(path)


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


if __name__ == "__main__":
    sys.exit(main())
