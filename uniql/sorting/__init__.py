"""Structured weight sorting: reorder every prunable channel so that a prefix is the best subset.

Sorting is an exact reparametrization: the sorted model computes the same function. Every
pruning rate then keeps a prefix (or per-head prefix) of the sorted channels.
"""

from uniql.sorting.model import sort_model

__all__ = ["sort_model"]
