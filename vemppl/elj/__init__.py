"""The expected log joint as a pure function of moments (GUIDE §2).

``moments`` (what a block offers a factor: its named mean parameters, and the derived
moments of expressions over them), ``evaluate`` (one factor on its plate grid),
``plates`` (where a node's definitions write), ``binding`` (sizes and values of a model's
names), ``networks`` (network forward passes and amortised draws), ``joint`` (the sum
over factors and the entropies of the blocks) and ``prior`` (every block at its prior).
This layer reads the IR, the families and the plan's plain data types; it knows nothing
of how the blocks are updated.
"""
