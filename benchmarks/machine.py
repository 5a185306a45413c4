"""The machine a benchmark ran on, recorded beside its results."""

import os
from pathlib import Path


def float32_from_argv(argv) -> bool:
    """``--float32`` among a benchmark's arguments: set ``VEMPPL_X64=0``, which vemppl reads
    when it is imported, so call this before ``import vemppl``."""
    if "--float32" not in argv:
        return False
    os.environ["VEMPPL_X64"] = "0"
    return True


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine(**versions) -> dict:
    """CPU count and model, JAX and vemppl versions, the peers' ``versions``, and the load
    average (1, 5, 15 minutes) when called: the machines are shared, and the same code has
    run at 2.7x and 4.1x scikit-learn's LDA speed on one machine type on two days."""
    import jax

    import vemppl

    return dict(nproc=os.cpu_count(), cpu=cpu_model(), jax=jax.__version__, vemppl=vemppl.__version__,
                load_average=[round(x, 2) for x in os.getloadavg()], **versions)
