"""gs-bench: measure exported GAN-Slimming artifacts against their teacher and compare runs.

Modules that also run on a remote board (``errors``, ``runners``, ``stats``, ``remote_runner``)
import only numpy and the one runtime they use, so the package can be copied to an ARM board
that has nothing but ``numpy`` and ``ai-edge-litert`` installed.
"""

__all__ = ["BenchError"]

from .errors import BenchError
