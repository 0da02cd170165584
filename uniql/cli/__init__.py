"""The ``uniql`` command-line entry point and its verbs."""
