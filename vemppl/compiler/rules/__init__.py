"""The compiler's structural rules, one module per graph pattern, each a match over the IR."""
