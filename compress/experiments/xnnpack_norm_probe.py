"""Which INT8 per-image normalisation graphs XNNPACK runs whole in LiteRT (no CPU-kernel hop).

    python -m compress.experiments.xnnpack_norm_probe

Each variant is a small float TensorFlow graph (a 3x3 conv on a 32x32x8 input, then a per-image
normalisation of its 16 channels), converted to a full-integer TFLite model with the ordinary
converter (int8 I/O, representative data), then loaded in LiteRT with its default XNNPACK delegate.
After allocation the interpreter lists one DELEGATE node per XNNPACK partition: 1 means the whole
graph runs in XNNPACK; 2 or more means some op falls back to a builtin kernel between partitions.
"""
from __future__ import annotations

import argparse
from typing import Callable

import numpy as np

VARIANTS: dict[str, str] = {
    "mean_sub": "conv -> MEAN -> SUB (+ReLU): exact per-image mean subtraction",
    "variance_mlp": "... -> MUL(d, d) -> MEAN -> 1x1 CONV+ReLU -> 1x1 CONV -> MUL -> ADD+ReLU: learned 1/sigma",
    "variance_rsqrt": "... -> MUL(d, d) -> MEAN -> ADD eps -> RSQRT -> MUL -> ADD+ReLU: exact 1/sigma",
    "mad_relu": "... -> RELU(d) -> MEAN -> ADD -> MUL -> ADD+ReLU: mean-absolute-deviation statistic",
}


def variant_fn(name: str) -> Callable:
    """The float graph of one variant as a tf.function (fixed random weights)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(0, 0.2, (3, 3, 8, 16)).astype(np.float32))
    w1 = tf.constant(rng.normal(0, 0.2, (1, 1, 16, 32)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.2, (1, 1, 32, 16)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((1, 32, 32, 8), tf.float32)])
    def graph(x: tf.Tensor) -> tf.Tensor:
        y = tf.nn.conv2d(x, w, 1, "SAME")
        d = y - tf.reduce_mean(y, axis=[1, 2], keepdims=True)
        if name == "mean_sub":
            return tf.nn.relu(d)
        if name == "mad_relu":
            s = 1.0 + tf.reduce_mean(tf.nn.relu(d), axis=[1, 2], keepdims=True)
        else:
            v = tf.reduce_mean(d * d, axis=[1, 2], keepdims=True)
            s = (tf.math.rsqrt(v + 1e-3) if name == "variance_rsqrt"
                 else tf.nn.conv2d(tf.nn.relu(tf.nn.conv2d(v, w1, 1, "VALID")), w2, 1, "VALID"))
        return tf.nn.relu(d * s + 0.1)

    return graph


def probe(name: str) -> tuple[list[str], int]:
    """(int8 op names of the converted model, XNNPACK partitions) of one variant."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    graph = variant_fn(name)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([graph.get_concrete_function()], graph)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(1)
    converter.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, 32, 32, 8)).astype(np.float32)]
                                                for _ in range(20))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    interpreter = Interpreter(model_content=converter.convert(), num_threads=1)
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    interpreter.allocate_tensors()
    partitions = sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    return ops, partitions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.xnnpack_norm_probe",
                                description=__doc__.split("\n\n")[0])
    p.parse_args(argv)
    for name, what in VARIANTS.items():
        ops, partitions = probe(name)
        print(f"{name:15s} XNNPACK partitions: {partitions}  ops: {' '.join(ops)}\n{'':15s} ({what})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
