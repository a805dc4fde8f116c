package com.gsmobile.demo

import java.io.File

/** Timed runs shared by the screen and the adb benchmark mode. */
object Benchmark {
    /** logcat tag of the benchmark JSON line. */
    const val TAG = "GsBench"
    /** Written to getExternalFilesDir(null) (/sdcard/Android/data/com.gsmobile.demo/files/). */
    const val FILE_NAME = "benchmark.json"

    /** Result of [measure]: latencies and the output of the first run. */
    class Measured(val result: BenchResult, val output: ByteArray)

    /** One untimed-by-statistics first run (reported as first_ms), then [runs] timed runs. */
    fun measure(runner: ModelRunner, input: ByteArray, runs: Int, model: String): Measured {
        require(runs >= 1) { "runs must be >= 1" }
        val t0 = System.nanoTime()
        val output = runner.run(input)
        val firstMs = ModelRunner.elapsedMs(t0)
        val times = DoubleArray(runs) { runner.timedRun(input) }
        return Measured(BenchResult(model, runner.threads, runner.initMs, firstMs, times), output)
    }

    /** Write [json] to dir/benchmark.json atomically (temp file + rename). */
    fun write(dir: File, json: String): File {
        dir.mkdirs()
        val target = File(dir, FILE_NAME)
        val tmp = File(dir, "$FILE_NAME.tmp")
        tmp.writeText(json + "\n")
        if (!tmp.renameTo(target)) throw java.io.IOException("cannot rename $tmp to $target")
        return target
    }
}
