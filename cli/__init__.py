"""The `gsrender` command: the render, and the verbs of every layer (info, job, train, serve...).

The top of the package tree: it may import any gsrender package, and nothing imports it.
"""

from .verbs import VERBS, main

__all__ = ["VERBS", "main"]
