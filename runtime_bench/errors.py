"""The one exception type gs-bench turns into a one-line error and exit code 2."""


class BenchError(Exception):
    """Bad input or unreachable target: reported as one line on stderr, exit code 2."""
