package com.gsmobile.demo

import org.json.JSONArray
import org.json.JSONObject

/** What the app needs from manifest.json (written by gs-export, see docs/CONTRACTS.md). */
class ModelSpec(val artifactPath: String, val input: TensorSpec, val output: TensorSpec) {
    companion object {
        /** The artifact the app runs; gs-export --android copies it to assets/model.tflite. */
        const val ARTIFACT_NAME = "student_int8_tflite"

        /** Parse the manifest text; uses the student INT8 TFLite entry (else the first tflite one). */
        fun parse(manifestJson: String): ModelSpec {
            val artifacts = JSONObject(manifestJson).getJSONArray("artifacts")
            var chosen: JSONObject? = null
            for (i in 0 until artifacts.length()) {
                val a = artifacts.getJSONObject(i)
                if (a.optString("name") == ARTIFACT_NAME) chosen = a
                if (chosen == null && a.optString("format") == "tflite") chosen = a
            }
            val artifact = chosen ?: throw IllegalArgumentException("manifest.json has no tflite artifact")
            return ModelSpec(
                artifact.optString("path", "model.tflite"),
                tensor(artifact.getJSONArray("inputs").getJSONObject(0)),
                tensor(artifact.getJSONArray("outputs").getJSONObject(0))
            )
        }

        private fun tensor(t: JSONObject): TensorSpec {
            val shapeJson: JSONArray = t.getJSONArray("shape")
            val shape = IntArray(shapeJson.length()) { shapeJson.getInt(it) }
            require(shape.size == 4 && shape[0] == 1 && shape[3] == 3) { "expected NHWC [1, H, W, 3], got ${shape.joinToString()}" }
            val scale = if (t.isNull("scale")) null else t.getDouble("scale")
            val zeroPoint = if (t.isNull("zero_point")) null else t.getInt("zero_point")
            return TensorSpec(shape, t.getString("dtype"), scale, zeroPoint)
        }
    }
}
