"""gs-export: turn a gs-compress run into validated INT8 / fp32 ONNX, TFLite and Core ML artifacts.

    student.pt --slim.py--> ExportGraph (alive channels only, folded weights, QAT int8 grids)
               --formats.py (the format table: artifacts, exporters, runners, checks, runtime, options)-->
               onnx_build.py / tflite_build.py / Core ML
               --validate.py (run, PSNR, op histogram, structure)--> manifest.py --> EXPORT_DIR

Modules: graph.py (the framework-neutral slim graph + its torch executor), slim.py (student and
teacher -> graph; why channel removal is exact), onnx_build.py (hand-written QDQ graph), tflite_build.py
(TensorFlow rebuild with FakeQuant at the student's quantisers), artifact_info.py (ops, MACs, params,
I/O read back from each file), pipeline.py (staging, validation, atomic commit), runners.py (validation runners), cli.py
(`gs-export`).
android_assets.py installs the INT8 .tflite into the Android demo.
"""
