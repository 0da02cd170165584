"""UniQL: one compression pass that serves every pruning rate from one banded 4-bit artifact.

Importing this package loads neither torch nor transformers, so the edge runtime can depend on
``uniql.artifact`` and the CLI shell without them.
"""

__version__ = "0.1.0"
