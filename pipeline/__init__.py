"""What runs several stages: the demo (``gs-demo``), the pipeline report and the CI cost gate.

The stages themselves (``compress``, ``export``, ``runtime_bench``) never import each other's
internals; this package is the one place that calls them in sequence.
"""
