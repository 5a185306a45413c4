"""Two processes on localhost joined by ``jax.distributed.initialize`` against one process.

    python benchmarks/distributed.py            # GMM N = 20k, D = 2, K = 3, 30 sweeps
    python benchmarks/distributed.py --n 200000

The parent runs (1) one process with two forced CPU devices, ``fit(..., algorithm=vp.cavi(devices=2))``, and
(2) two processes with one CPU device each, joined by
``jax.distributed.initialize(coordinator_address="localhost:PORT", num_processes=2,
process_id=i)``, each calling the same fit: ``jax.devices()`` then lists
both processes' devices, each process holds its half of the data plate, and the sums over
the plate are all-reduces between the processes (gloo over TCP on CPU).  It reports both
ELBO traces, their largest relative difference and the wall times, and writes
``results_distributed.json`` / ``.md`` beside the script.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODEL = HERE.parent / "models" / "gmm.vem"


def data(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 3, n)
    return np.array([[0, 0], [5, 5], [0, 6.0]])[z] + rng.normal(size=(n, 2))


def worker(a):
    import jax

    if a.process_id >= 0:
        jax.distributed.initialize(coordinator_address=f"localhost:{a.port}", num_processes=2,
                                   process_id=a.process_id)
    import vemppl as vp

    t0 = time.perf_counter()
    fit = vp.fit(vp.load(MODEL), {"x": data(a.n, a.seed)}, algorithm=vp.cavi(devices=2), max_iter=a.iters, tol=0.0, progress=False)
    out = {"trace": fit.elbo_trace.tolist(), "wall_s": time.perf_counter() - t0, "compile_s": fit.compile_seconds,
           "devices": [str(d) for d in jax.devices()], "process": jax.process_index()}
    print(json.dumps(out))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def launch(a, process_id, devices, port):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    cmd = [sys.executable, __file__, "--worker", "--process-id", str(process_id), "--port", str(port),
           "--n", str(a.n), "--iters", str(a.iters), "--seed", str(a.seed)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(p):
    out, err = p.communicate(timeout=1800)
    if p.returncode:
        raise SystemExit(f"a worker failed:\n{err[-4000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--process-id", type=int, default=-1)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    if a.worker:
        return worker(a)
    one = result(launch(a, -1, 2, 0))
    port = free_port()
    procs = [launch(a, i, 1, port) for i in range(2)]
    two = [result(p) for p in procs]
    t1, t2 = np.asarray(one["trace"]), np.asarray(two[0]["trace"])
    same_on_both = two[0]["trace"] == two[1]["trace"]
    rel = float(np.max(np.abs(t2 - t1) / np.abs(t1))) if len(t1) == len(t2) else float("nan")
    res = {"n": a.n, "iters": a.iters, "one_process": one, "two_processes": two, "max_rel_diff": rel,
           "processes_agree": same_on_both}
    tmp = HERE / ".results_distributed.json.tmp"
    tmp.write_text(json.dumps(res, indent=2))
    os.replace(tmp, HERE / "results_distributed.json")
    md = [
        f"# One process against two joined by jax.distributed (GMM, N = {a.n:,}, {a.iters} sweeps, 2 devices)", "",
        "| run | devices | wall s (incl. compile) | compile s | final ELBO |", "| --- | --- | --- | --- | --- |",
        f"| 1 process, 2 forced CPU devices | {', '.join(one['devices'])} | {one['wall_s']:.1f} | "
        f"{one['compile_s']:.1f} | {t1[-1]:.10g} |",
        f"| 2 processes on localhost, 1 CPU device each | {', '.join(two[0]['devices'])} | "
        f"{max(t['wall_s'] for t in two):.1f} | {two[0]['compile_s']:.1f} | {t2[-1]:.10g} |", "",
        f"Largest relative difference of the ELBO traces: {rel:.2e}; both processes report the same trace: "
        f"{same_on_both}.", "",
    ]
    tmp = HERE / ".results_distributed.md.tmp"
    tmp.write_text("\n".join(md))
    os.replace(tmp, HERE / "results_distributed.md")
    print("\n".join(md))


if __name__ == "__main__":
    main()
