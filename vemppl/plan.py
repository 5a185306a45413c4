"""The compiled plan: a plain, frozen, printable structure.

A plan lists the variational *blocks* (one ``q_j`` per latent node, or per structured
group), the *factors* of the expected log joint (one per ``~`` statement), the point
parameters and their M-step, and the schedule of updates.  It holds no arrays: the
engine turns it into JAX functions once the data's shapes are known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .families import get_family
from .ir.expr import Expr
from .ir.nodes import Definition
from .ir.text import definition_to_text


class _Named(str, Enum):
    """A closed set of names: compares equal to its value and prints as it."""

    def __str__(self) -> str:
        return self.value


class BlockStructure(_Named):
    """How a block's elements are grouped into one factor ``q_j``."""

    MEAN_FIELD = "mean-field"
    MARKOV_CHAIN = "markov-chain"  # a chain of categoricals, forward–backward by autodiff
    JOINT = "joint"  # several nodes in one structured block (``Block.members``), e.g. q(mu[k], Lam[k])
    JOINT_LAST_AXIS = "joint over last axis"  # scalar Normals read as a vector: one MvNormal
    AMORTISED = "amortised (diagonal)"  # a diagonal Normal given by an encoder
    GAUSSIAN_CHAIN = "gaussian-chain"  # a chain of scalar Gaussians, Kalman smoothing by autodiff


class Update(_Named):
    """How a block is updated."""

    CAVI = "cavi"  # closed form: η_j = ∇_{μ_j} L
    NATURAL_GRADIENT = "natural-gradient"  # damped, with a line search on the ELBO
    AMORTISED = "amortised"  # the encoder's Adam steps


class Init(_Named):
    """Where a block starts."""

    PRIOR = "prior"
    PRIOR_DRAW = "prior draw"  # a draw of the prior (the global side of a bilinear term)
    KMEANS = "kmeans++"  # broad k-means++ responsibilities from the data the block gates
    RANDOM = "random"  # random responsibilities


class MStep(_Named):
    """How a point parameter is fitted."""

    CLOSED_FORM = "closed-form"  # the mode of the family whose statistics make L affine
    GRADIENT = "gradient"  # Adam steps in an unconstrained space
    NETWORK = "network"  # Adam on a reparameterised Monte Carlo ELBO


@dataclass(frozen=True)
class EnumRef:
    """A categorical latent read as an index (``z[n]`` in ``mu[z[n]]``): summed over its values."""

    expr: Expr
    block: str


@dataclass(frozen=True)
class Factor:
    target: str
    definition: Definition
    family: str
    enum: tuple[EnumRef, ...] = ()

    def describe(self) -> str:
        return definition_to_text(self.target, self.definition)


@dataclass(frozen=True)
class Block:
    name: str
    family: str
    structure: BlockStructure = BlockStructure.MEAN_FIELD
    update: Update = Update.CAVI
    reason: str | None = None  # why the update is not closed form
    init: Init = Init.PRIOR
    # A joint block over several nodes: (role, node) pairs, e.g. (("loc", "mu"), ("precision", "Lam"))
    # for a Normal–Wishart; the block is named after its first member.
    members: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):  # a name given as its text becomes the member (Update("cavi"))
        for f, kind in (("structure", BlockStructure), ("update", Update), ("init", Init)):
            object.__setattr__(self, f, kind(getattr(self, f)))

    @property
    def structure_text(self) -> str:
        """The structure as printed: a joint block's is its family's (``normal-wishart``)."""
        return get_family(self.family).block_text if self.structure is BlockStructure.JOINT else str(self.structure)

    @property
    def label(self) -> str:
        """``mu`` or, for a joint block, ``mu, Lam``."""
        return ", ".join(n for _, n in self.members) if self.members else self.name


@dataclass(frozen=True)
class ParamPlan:
    name: str
    type: str
    mstep: MStep = MStep.GRADIENT
    family: str | None = None  # the family whose mode gives the closed-form M-step
    reason: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "mstep", MStep(self.mstep))


@dataclass(frozen=True)
class Rotation:
    """A bilinear pair of multivariate Normal blocks (``compiler/rules/rotation.py``):
    ``scaled`` (global, ``W → W R⁻¹``) and ``rotated`` (local, ``z → R z``); ``refresh``: the
    closed-form blocks re-fitted after the transformation (an ARD precision); ``invariant``:
    the indices in ``Plan.factors`` of the factors the transformation leaves unchanged;
    ``summarised``: the pair's blocks whose own factor is the same for every row, which the step
    reads through their rows' weighted mean (an L-vector and an L×L matrix)."""

    scaled: str
    rotated: str
    refresh: tuple[str, ...] = ()
    invariant: tuple[int, ...] = ()
    summarised: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    model: str
    blocks: tuple[Block, ...]
    factors: tuple[Factor, ...]
    params: tuple[ParamPlan, ...] = ()
    schedule: tuple[str, ...] = field(default=())
    #: The default start, read off the graph: ``"random-globals"`` for an admixture (a categorical
    #: latent whose weights are a latent read through data, LDA's ``theta[doc[i]]``), whose locals
    #: are then fitted to random globals first and restarted while the globals move
    #: (``engine/schedule.py``); ``"prior"`` otherwise.
    start: str = "prior"
    #: The admixture's data plate (its categorical's loop over a dim), which that start splits
    #: unless ``fit(..., plate=)`` names another: other observed arrays may lead with other dims.
    start_plate: str | None = None
    #: The data plate whose rows the fit reads only through their first two moments (a
    #: linear-Gaussian plate, ``compiler/rules/linear_gaussian.py``): the engine fits ``2r``
    #: weighted rows with the data's count, sum and sum of squares (``engine/moment_rows.py``);
    #: None otherwise.
    moment_plate: str | None = None
    #: Bilinear pairs whose ELBO a linear reparameterisation raises before each sweep
    #: (``engine/rotation.py``; Luttinen & Ilin 2010).
    rotations: tuple[Rotation, ...] = ()

    def block(self, name: str) -> Block:
        return next(b for b in self.blocks if b.name == name)

    def param(self, name: str) -> ParamPlan:
        return next(p for p in self.params if p.name == name)

    def __str__(self) -> str:
        lines = [f"plan for model '{self.model}'", "", "variational blocks (in update order):" if self.schedule else
                 "variational blocks: none (no latents: every unknown is a point parameter)"]
        if self.start != "prior":
            lines[1:1] = ["", f"default start: {self.start} (globals at random, the local blocks fitted to them first; "
                              "an admixture's locals restarted in the first sweeps)"]
        for name in self.schedule:
            b = self.block(name)
            if b.update is Update.AMORTISED:
                lines.append(f"  q({b.name}): {b.family} [{b.structure_text}] -- amortised: an encoder network gives it")
                lines.append(f"      {b.reason}; Adam steps on a reparameterised Monte Carlo ELBO")
                continue
            kind = "closed-form CAVI" if b.update is Update.CAVI else b.update
            line = f"  q({b.label}): {b.family} [{b.structure_text}] -- {kind}; init {b.init}"
            lines.append(line)
            if b.reason:
                lines.append(f"      not conjugate: {b.reason}")
        if self.moment_plate is not None:
            lines += ["", f"data plate over {self.moment_plate}: linear-Gaussian, fitted on the data's first two moments",
                      "      (2r weighted rows, r = the rank of the rows' covariance; default tol 1e-10)"]
        for r in self.rotations:
            again = f", {', '.join(r.refresh)} re-fitted" if r.refresh else ""
            lines += ["", f"rotation of ({r.scaled}, {r.rotated}): {r.scaled} -> {r.scaled} R^-1, {r.rotated} -> R {r.rotated}"
                          f"{again}, R maximising the ELBO,",
                      "      before each sweep once a sweep changes the ELBO by at most 1e-5 of it"]
        if self.params:
            lines += ["", "point parameters (M-step):"]
            for p in self.params:
                how = {
                    MStep.CLOSED_FORM: f"closed form ({p.family} mode)",
                    MStep.NETWORK: "neural network: Adam steps on a reparameterised Monte Carlo ELBO",
                }.get(p.mstep, "gradient steps (Adam)")
                lines.append(f"  {p.name}: {p.type} -- {how}")
                if p.reason:
                    lines.append(f"      {p.reason}")
        lines += ["", "factors of the expected log joint:"]
        for f in self.factors:
            gate = f"   (summed over {', '.join(sorted({r.block for r in f.enum}))})" if f.enum else ""
            lines.append(f"  {f.describe()}{gate}")
        return "\n".join(lines)


__all__ = ["Block", "BlockStructure", "EnumRef", "Factor", "Init", "MStep", "ParamPlan", "Plan", "Rotation", "Update"]
