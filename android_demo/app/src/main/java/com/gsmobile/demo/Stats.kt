package com.gsmobile.demo

import java.util.Locale

/** Latency summary of one benchmark; [toJson] is the document `gs-bench --target adb` parses. */
class BenchResult(
    val model: String,
    val threads: Int,
    val initMs: Double,
    val firstMs: Double,
    val runsMs: DoubleArray
) {
    val p50Ms: Double get() = Stats.percentile(runsMs, 50.0)
    val p90Ms: Double get() = Stats.percentile(runsMs, 90.0)
    val meanMs: Double get() = runsMs.average()

    /** Exactly the keys model, runs, threads, init_ms, first_ms, p50_ms, p90_ms, mean_ms. */
    fun toJson(): String = String.format(
        Locale.US,
        "{\"model\": %s, \"runs\": %d, \"threads\": %d, \"init_ms\": %.3f, \"first_ms\": %.3f, " +
            "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"mean_ms\": %.3f}",
        Stats.jsonString(model), runsMs.size, threads, initMs, firstMs, p50Ms, p90Ms, meanMs
    )
}

/** Small pure statistics helpers (no Android types). */
object Stats {
    /** Percentile with linear interpolation between order statistics (numpy's default). */
    fun percentile(values: DoubleArray, q: Double): Double {
        require(values.isNotEmpty()) { "no values" }
        val sorted = values.sortedArray()
        val pos = q / 100.0 * (sorted.size - 1)
        val lo = Math.floor(pos).toInt()
        val hi = Math.min(lo + 1, sorted.size - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
    }

    /** JSON string literal for [s] (quotes, backslashes and control characters escaped). */
    fun jsonString(s: String): String {
        val sb = StringBuilder("\"")
        for (c in s) {
            when {
                c == '"' || c == '\\' -> sb.append('\\').append(c)
                c < ' ' -> sb.append(String.format(Locale.US, "\\u%04x", c.toInt()))
                else -> sb.append(c)
            }
        }
        return sb.append('"').toString()
    }
}
