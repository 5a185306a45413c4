"""What the command line does around a verb: warnings, signals, errors, status, the cache.

- Python warnings are printed as one line, ``warning: MESSAGE``, once per message, with no
  source path; DeprecationWarnings (vemppl's own API changes) never reach CLI output.
- SIGTERM is turned into an exception like SIGINT's, so ``finally`` blocks and ``atexit``
  run: a half-written result file or a temporary compile-cache folder is removed.
- Errors are sorted by who can fix them: a :class:`VemError`, a file the system refuses,
  or memory running out is the user's to fix (exit 2); anything else is a bug (exit 1).
- Messages from the Python API are reworded for the command line (``consts=`` is ``--set``).
- A status line says what runs (reading, compiling, writing) on a terminal.
- Compiled XLA programs are kept in a user cache folder (``_compile_cache``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import signal
import sys
import threading
import warnings
import zipfile

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so cleanup runs (exit status 128 + 15)."""


def install_handlers():
    """One-line warnings, and SIGTERM/SIGINT as exceptions with a backstop, for one CLI run.

    Returns a function that puts the previous handlers and warning filters back (for callers
    of ``main()`` inside a longer-lived process, tests among them).
    """
    global _STOP_SAID
    _STOP_SAID = threading.Lock()
    shown, filters = warnings.showwarning, warnings.filters[:]
    warnings.showwarning = _show_warning
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    _PREVIOUS_UNRAISABLE.append(sys.unraisablehook)
    sys.unraisablehook = _on_unraisable
    handlers = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            handlers[sig] = signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread (main() called from a worker thread): leave it
            pass

    def restore():
        warnings.showwarning = shown
        warnings.filters[:] = filters
        sys.unraisablehook = _PREVIOUS_UNRAISABLE.pop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    return restore


_SEEN: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None):
    text = " ".join(str(message).split())
    if text in _SEEN:
        return
    _SEEN.add(text)
    print(f"warning: {reword(text)}", file=sys.stderr if file is None else file)


#: Seconds between a signal and the backstop's exit (see :func:`_on_signal`).
GRACE_SECONDS = 5.0
_BACKSTOP: list[threading.Timer] = []


def _on_signal(signum, frame):
    """SIGTERM raises :class:`Terminated`, SIGINT ``KeyboardInterrupt``, in the main thread.

    Python runs a handler between any two bytecodes, also inside a garbage-collector or
    weakref callback (JAX and importlib have them) or a ``__del__``, where a raised exception
    is dropped and reported to ``sys.unraisablehook``: :func:`_on_unraisable` sends the signal
    again a moment later instead.  A backstop thread removes the temporary cache folder and
    ends the process ``GRACE_SECONDS`` after the first signal, whatever the main thread is doing.
    """
    if not _BACKSTOP:
        timer = threading.Timer(GRACE_SECONDS, _backstop, args=(128 + signum,))
        timer.daemon = True
        timer.start()
        _BACKSTOP.append(timer)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_unraisable(unraisable) -> None:
    """A signal's exception raised where Python drops exceptions (a callback, a finaliser):
    say nothing and send the signal again, so it is raised at the next ordinary bytecode.
    Anything else goes to the hook that was there before."""
    if isinstance(unraisable.exc_value, (Terminated, KeyboardInterrupt)):
        signum = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
        again = threading.Timer(0.05, os.kill, args=(os.getpid(), signum))
        again.daemon = True
        again.start()
        return
    _PREVIOUS_UNRAISABLE[-1](unraisable)


_PREVIOUS_UNRAISABLE: list = [sys.__unraisablehook__]


def _backstop(status: int) -> None:
    """The main thread did not get back to Python within the grace period (XLA compiling):
    say why the run ends, as :func:`vemppl.cli.main` would have, then end it."""
    say_stopped(status)
    hard_exit(status)


_STOP_SAID = threading.Lock()


def say_stopped(status: int) -> None:
    """Print ``terminated`` (143) or ``interrupted`` (130) on stderr, once per process.

    Both the main thread's handler and the backstop may get here; the lock is taken and not
    released (:func:`install_handlers` makes a new one per run), so the second prints nothing.
    """
    if _STOP_SAID.acquire(blocking=False):
        print("terminated" if status == 143 else "interrupted", file=sys.stderr, flush=True)


def hard_exit(status: int) -> None:
    """Remove the temporary files and leave without the interpreter's teardown.

    By now the ``finally`` blocks have run (a half-written result file is gone); what is left
    is the per-process compile-cache folder.  XLA may still be compiling on its own threads,
    and tearing the interpreter down under them crashed (SIGSEGV) or hung, so the process
    ends with ``os._exit`` once that folder is removed and the output flushed.
    """
    from . import _compile_cache

    _compile_cache.cleanup()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


#: Whether this process is the ``vemppl`` program (``main()`` with no argv), not a caller of main().
_PROGRAM: list[bool] = [False]


def as_program() -> None:
    """This process is the program: :func:`imports` may change the garbage collector's state."""
    _PROGRAM[0] = True


@contextlib.contextmanager
def imports():
    """Around a verb's first imports (JAX, NumPyro, the compiler): for the program, the
    garbage collector is off while they load, and what they loaded is then frozen out of its
    later collections (``gc.freeze``: the modules' objects live as long as the process).

    A 10k-point GMM's ``vemppl fit`` spent 0.3-0.65 s in the collector (measured with
    ``gc.callbacks``, warm compile cache, load 4-5), most in four full collections of the
    ~million objects the imports leave, which found 30-2500 objects to free; with the
    imports' objects frozen, 0.07-0.16 s.  The collector is then on again for the fit, with
    :data:`GC_THRESHOLDS`.  A caller of ``main()`` keeps its own collector as it was."""
    if not (_PROGRAM[0] and gc.isenabled()):
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        gc.enable()


#: The program's collector thresholds after its imports (Python's are 700, 10, 10): a young
#: collection every 10,000 net allocations, an older one every 20 of those, a full one every 100
#: older ones.  Tracing a fit's programs allocates JAX's objects by the hundred thousand, most of
#: them kept for the fit; with Python's thresholds the warm 10k-point GMM's ``vemppl fit`` ran
#: ~240 young, 21 older and one full collection, 0.16-0.19 s in all (``gc.callbacks``, 3 runs,
#: load ~4 on 2 cores), with these 15 young ones and no other, 0.05-0.11 s; its peak memory
#: the same (335-338 MB).  Garbage in cycles is still collected, later.
GC_THRESHOLDS = (10_000, 20, 100)


def quick_exit(status: int) -> None:
    """End the program after its verb without the interpreter's teardown (issue #21).

    Tearing down a process that has imported JAX, NumPyro and matplotlib and holds XLA's
    client and executables took 0.3-0.45 s of a 10k-point GMM's ``vemppl fit`` (measured
    with a warm compile cache, paired in one shell: 3.25-3.30 s with it, 2.84-3.09 s
    without), after every result was written and closed.  What the teardown would do that
    matters is done here, in its order: the wait for any non-daemon thread, the ``atexit``
    functions (the temporary compile-cache folder's removal, logging's flush, JAX's own),
    and the flush of stdout and stderr; then ``os._exit``.  Only for the program itself
    (``vemppl``, ``python -m vemppl``): a caller of ``main()`` gets its status back."""
    import atexit

    for thread in threading.enumerate():  # as the interpreter's exit does, before atexit's functions
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    _without_jax_clean_up(atexit)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _without_jax_clean_up(atexit) -> None:
    """JAX's ``atexit`` function ``clean_up`` destroys its backends and empties its caches
    (0.05-0.09 s after a 10k-point GMM's fit) so the interpreter's teardown finds them gone;
    ``os._exit`` tears nothing down.  It also shuts a distributed runtime down: kept then."""
    api, distributed = sys.modules.get("jax._src.api"), sys.modules.get("jax._src.distributed")
    state = getattr(distributed, "global_state", None)
    clean_up = getattr(api, "clean_up", None)
    if clean_up is None or state is None or getattr(state, "client", 1) is not None \
            or getattr(state, "service", 1) is not None:
        return
    atexit.unregister(clean_up)


# ---- errors --------------------------------------------------------------------------------
#: Python-API wording in messages, and what the command line calls it.
_WORDING = [
    (r"\(from (?:consts|dims)=\)", "(from --set)"),
    (r"\b(?:consts|dims)= sets '(\w+)'", r"--set \1"),
    (r"fit\(\.\.\., (?:dims|consts)=\{'(\w+)': \.\.\.\}\) or ", ""),
    (r"(?:dims|consts)=\{'(\w+)': ([^}]*)\}", r"--set \1=\2"),
    (r"predictive_density\(\.\.\., exact=False\)", "--density mc"),
    (r"predictive_density\(\.\.\., exact=True\)", "--density exact"),
    (r"fit\(\.\.\., plate='(\w+)'\)", r"--plate \1"),
    (r"\bcompress=True\b", "--compress yes"),
    (r"\bvp\.cavi\(screen=(\d+)\)", r"--screen \1"),
    (r"\bfit\(restarts=R\)", "--restarts R"),
    (r"^data= names arrays\b", "--data holds arrays"),
    (r"\b(restarts|max_iter|local_iter|local_tol|local_restart|batch_size|step_size|seed|tol)=(?=[\s,.;)]|$)",
     lambda m: "--" + m.group(1).replace("_", "-")),
    (r"(?<!')\b(max_iter|local_iter|local_tol|local_restart|batch_size|step_size)\b(?!')",
     lambda m: "--" + m.group(1).replace("_", "-")),
]


def reword(text: str) -> str:
    """A message of the Python API in the command line's words."""
    for pattern, repl in _WORDING:
        text = re.sub(pattern, repl, text)
    return text


def render_error(err) -> str:
    """A VemError's code frame, its message and hint reworded for the command line (the
    model text quoted in the frame is left as written)."""
    from .diagnostics import VemError

    return VemError(err.kind, reword(err.message), err.span, reword(err.hint) if err.hint else None).render()


#: NumPy's words for an array larger than any machine's memory: an allocation, not a bug.
_TOO_BIG = ("Maximum allowed dimension exceeded", "array is too big")


def classify(exc: BaseException) -> tuple[int, str] | None:
    """(exit status, message) for an exception the user can fix; None for a bug."""
    from .diagnostics import VemError

    if isinstance(exc, VemError):
        return EXIT_BAD_INPUT, render_error(exc)
    too_big = isinstance(exc, ValueError) and any(t in str(exc) for t in _TOO_BIG)
    if isinstance(exc, MemoryError) or too_big or "RESOURCE_EXHAUSTED" in str(exc)[:2000]:
        return EXIT_BAD_INPUT, (
            "error: resource: out of memory while fitting"
            + (f" ({_first_line(exc)})" if str(exc) else "")
            + "\nhint: fit fewer rows at a time (--batch-size B), lower the sizes (--set), or use a larger machine"
        )
    if isinstance(exc, zipfile.BadZipFile):
        return EXIT_BAD_INPUT, f"error: io: a .npz file is damaged or truncated ({exc})"
    if isinstance(exc, OSError) and (exc.filename or exc.errno):
        return EXIT_BAD_INPUT, f"error: io: {exc.strerror or exc}" + (f": '{exc.filename}'" if exc.filename else "")
    return None


def _first_line(exc) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def internal(exc: BaseException) -> str:
    return (
        f"internal error: {type(exc).__name__}: {exc}; this is a bug in vemppl, not in your model "
        "(set VEMPPL_DEBUG=1 for the traceback)"
    )


# ---- the status line -----------------------------------------------------------------------
class Status:
    """A one-line status on a terminal (``rich``), nothing elsewhere or with ``--quiet``.

    The engine's progress bar nests inside it (rich allows one live display inside
    another), so the line stays while the bar runs and says what follows it.  Each new
    phase is drawn at once, however short it is.
    """

    def __init__(self, show: bool):
        self._live = None
        if show and sys.stdout.isatty():
            from rich import get_console
            from rich.live import Live
            from rich.spinner import Spinner

            self._spinner = Spinner("dots", text="starting", style="green")
            self._live = Live(self._spinner, console=get_console(), transient=True, refresh_per_second=12.5)

    def __enter__(self):
        if self._live is not None:
            self._live.start()
        return self

    def __call__(self, text: str) -> None:
        if self._live is not None:
            self._spinner.update(text=text)
            self._live.refresh()

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.stop()
        return False


# ---- the compile cache ---------------------------------------------------------------------
def setup_cache(no_cache: bool) -> None:
    """Before JAX starts: compiled programs kept in the user's cache folder by default."""
    from . import _compile_cache

    _compile_cache.request("off" if no_cache else "user")


_CACHE_EVENTS = {"hits": 0, "misses": 0}  # of this process, from one listener registered once


def _on_cache_event(event, **kwargs):
    if event.endswith("/compilation_cache/cache_hits"):
        _CACHE_EVENTS["hits"] += 1
    elif event.endswith("/compilation_cache/cache_misses"):
        _CACHE_EVENTS["misses"] += 1


class CacheCounter:
    """JAX's persistent-cache hits and misses from now on (``jax.monitoring`` events)."""

    def __init__(self):
        import jax.monitoring

        if not _CACHE_EVENTS.get("listening"):
            jax.monitoring.register_event_listener(_on_cache_event)
            _CACHE_EVENTS["listening"] = True
        self._start = dict(_CACHE_EVENTS)

    def describe(self) -> str | None:
        import jax

        folder = jax.config.jax_compilation_cache_dir
        hits, misses = (_CACHE_EVENTS[k] - self._start[k] for k in ("hits", "misses"))
        if not folder or not (hits or misses):
            return None
        return f"compiled programs: {hits} read from the cache, {misses} compiled (cache: {folder})"


def debug() -> bool:
    return os.environ.get("VEMPPL_DEBUG") == "1"


# ---- imports ahead of need ------------------------------------------------------------------
def preload(*modules: str) -> None:
    """Import ``modules`` on a daemon thread, for the results' files after a fit (issue #21).

    While XLA compiles it releases Python's lock, so on a second core the plotting library's
    import (half a second of a cold 10k-point GMM's command line) costs the command nothing.
    An import that fails here fails again where the module is used, and is reported there."""

    def load():
        import importlib

        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - reported by the import where it is needed
                return

    threading.Thread(target=load, name="vemppl-preload", daemon=True).start()
