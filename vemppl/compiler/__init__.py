"""The compiler: IR → plan of variational blocks, factors, M-steps and schedule."""

from .compile import compile_model
from ..plan import Block, EnumRef, Factor, ParamPlan, Plan

__all__ = ["compile_model", "Plan", "Block", "Factor", "EnumRef", "ParamPlan"]
