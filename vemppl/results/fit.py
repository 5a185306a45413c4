"""The result of a fit: posteriors as NumPyro distributions, parameters, the ELBO trace."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Fit:
    model: object
    plan: object
    bound: object
    engine: object
    state: object
    elbo_trace: np.ndarray
    converged: bool
    iterations: int
    seed: int = 0
    restarts: int = 1
    compile_seconds: float = 0.0
    fit_seconds: float = 0.0
    best_restart: int = 0
    _posterior: dict | None = field(default=None, repr=False)

    @property
    def elbo(self) -> float:
        """The final evidence lower bound."""
        return float(self.elbo_trace[-1])

    @property
    def posterior(self) -> dict:
        """``q`` of every latent: one NumPyro distribution over the whole plate."""
        if self._posterior is None:
            self._posterior = {
                j: self.engine.families[j].to_numpyro(eta) for j, eta in self.state.eta.items()
            }
        return self._posterior

    @property
    def natural_params(self) -> dict:
        return dict(self.state.eta)

    @property
    def mean_params(self) -> dict:
        """E_q[T(z)] of every block, by statistic name."""
        return {j: mu._asdict() for j, mu in self.state.mu.items()}

    @property
    def params(self) -> dict:
        return {k: np.asarray(v) for k, v in self.state.params.items()}

    def summary(self) -> str:
        """A table of the blocks with their families, shapes and posterior means."""
        lines = [
            f"model '{self.plan.model}': ELBO {self.elbo:.6g} after {self.iterations} iterations "
            f"({'converged' if self.converged else 'not converged'}; compile {self.compile_seconds:.2f}s, "
            f"fit {self.fit_seconds:.2f}s)",
            f"{'block':<12}{'family':<14}{'shape':<16}{'mean (first entries)'}",
        ]
        for j, d in self.posterior.items():
            mean = np.asarray(_mean(d))
            head = np.array2string(mean.ravel()[:4], precision=3, separator=", ")
            lines.append(f"{j:<12}{self.plan.block(j).family:<14}{str(mean.shape):<16}{head}")
        for k, v in self.params.items():
            lines.append(f"{k:<12}{'param':<14}{str(v.shape):<16}{np.array2string(v.ravel()[:4], precision=3)}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Fit {self.plan.model}: ELBO {self.elbo:.6g}, {self.iterations} iterations>"


def _mean(d):
    try:
        return d.mean
    except NotImplementedError:
        return d.probs if hasattr(d, "probs") else np.nan
