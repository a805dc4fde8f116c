package com.gsmobile.demo

import android.app.Activity
import android.content.ActivityNotFoundException
import android.content.Intent
import android.os.Bundle
import android.util.Log
import android.view.View
import android.widget.Button
import android.widget.ImageView
import android.widget.LinearLayout
import android.widget.TextView
import java.io.File
import java.io.InputStream
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * The demo screen: original photo | stylised result, model facts and timings.
 *
 * Benchmark mode (no UI interaction), e.g.
 * `adb shell am start -n com.gsmobile.demo/.MainActivity --es mode benchmark --ei runs 50 --ei threads 4`
 * writes [Benchmark.FILE_NAME] to getExternalFilesDir(null) and logs it under tag [Benchmark.TAG].
 */
class MainActivity : Activity() {
    private lateinit var info: TextView
    private lateinit var timing: TextView
    private lateinit var original: ImageView
    private lateinit var result: ImageView
    private lateinit var threadsButton: Button
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var spec: ModelSpec? = null
    private var photo: IntArray? = null
    private var threads = DEFAULT_THREADS
    private var runner: ModelRunner? = null // used on the worker thread only

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        buildUi()
        spec = try {
            ModelSpec.parse(assets.open(ModelRunner.MANIFEST_ASSET).bufferedReader().use { it.readText() })
        } catch (e: Exception) {
            info.text = getString(R.string.no_model, e.toString())
            null
        }
        handleIntent(intent)
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        setIntent(intent)
        handleIntent(intent)
    }

    override fun onDestroy() {
        worker.execute { runner?.close(); runner = null }
        worker.shutdown()
        super.onDestroy()
    }

    @Suppress("OverridingDeprecatedMember", "DEPRECATION")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        val uri = data?.data
        if (requestCode == REQUEST_PICK && resultCode == RESULT_OK && uri != null) {
            loadAndRun { contentResolver.openInputStream(uri) ?: throw IllegalArgumentException("cannot open $uri") }
        }
    }

    private fun handleIntent(intent: Intent) {
        if (intent.getStringExtra(EXTRA_MODE) == MODE_BENCHMARK) {
            runBenchmarkMode(intent.getIntExtra(EXTRA_RUNS, 50), intent.getIntExtra(EXTRA_THREADS, DEFAULT_THREADS))
        } else if (spec != null && photo == null) {
            loadAndRun { assets.open(SAMPLE_ASSET) }
        }
    }

    private fun buildUi() {
        val pad = (12 * resources.displayMetrics.density).toInt()
        val root = LinearLayout(this)
        root.orientation = LinearLayout.VERTICAL
        root.setPadding(pad, pad, pad, pad)
        root.fitsSystemWindows = true
        info = TextView(this)
        timing = TextView(this)
        original = ImageView(this)
        result = ImageView(this)
        threadsButton = Button(this)
        threadsButton.text = getString(R.string.threads_button, threads)
        threadsButton.setOnClickListener { cycleThreads() }
        root.addView(info)
        root.addView(row(button(R.string.pick_photo) { pickPhoto() }, button(R.string.sample_photo) { loadAndRun { assets.open(SAMPLE_ASSET) } }, threadsButton))
        root.addView(row(original, result), LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 0, 1f))
        root.addView(timing)
        for (view in arrayOf(original, result)) {
            view.scaleType = ImageView.ScaleType.FIT_CENTER
            view.adjustViewBounds = true
        }
        setContentView(root)
    }

    private fun button(label: Int, onClick: () -> Unit): Button {
        val b = Button(this)
        b.setText(label)
        b.setOnClickListener { onClick() }
        return b
    }

    /** A horizontal row whose children share the width equally. */
    private fun row(vararg children: View): LinearLayout {
        val row = LinearLayout(this)
        row.orientation = LinearLayout.HORIZONTAL
        for (child in children) {
            row.addView(child, LinearLayout.LayoutParams(0, LinearLayout.LayoutParams.MATCH_PARENT, 1f))
        }
        return row
    }

    private fun cycleThreads() {
        threads = THREAD_CHOICES[(THREAD_CHOICES.indexOf(threads) + 1) % THREAD_CHOICES.size]
        threadsButton.text = getString(R.string.threads_button, threads)
        val current = photo
        if (current != null) run(current)
    }

    @Suppress("DEPRECATION")
    private fun pickPhoto() {
        val intent = Intent(Intent.ACTION_GET_CONTENT).setType("image/*").addCategory(Intent.CATEGORY_OPENABLE)
        try {
            startActivityForResult(Intent.createChooser(intent, getString(R.string.pick_photo)), REQUEST_PICK)
        } catch (e: ActivityNotFoundException) {
            timing.text = e.toString()
        }
    }

    private fun loadAndRun(open: () -> InputStream) {
        val model = spec ?: return
        worker.execute {
            try {
                val pixels = Images.loadForModel(open, model.input)
                runOnUiThread {
                    photo = pixels
                    original.setImageBitmap(Images.toBitmap(pixels, model.input))
                    run(pixels)
                }
            } catch (e: Throwable) { // also UnsatisfiedLinkError / NoClassDefFoundError from the runtime
                runOnUiThread { timing.text = e.toString() }
            }
        }
    }

    /** Run the model on [pixels] on the worker thread and show the result and timings. */
    private fun run(pixels: IntArray) {
        val model = spec ?: return
        val n = threads
        timing.text = getString(R.string.running)
        worker.execute {
            try {
                val r = runnerFor(model, n)
                val measured = Benchmark.measure(r, Preprocessing.encode(pixels, model.input), UI_RUNS, model.artifactPath)
                val out = Images.toBitmap(Preprocessing.decode(measured.output, model.output), model.output)
                runOnUiThread {
                    result.setImageBitmap(out)
                    info.text = describe(model, r)
                    timing.text = String.format(Locale.US, getString(R.string.timing), measured.result.firstMs,
                        UI_RUNS, measured.result.p50Ms, n)
                }
            } catch (e: Throwable) { // also UnsatisfiedLinkError / NoClassDefFoundError from the runtime
                runOnUiThread { timing.text = e.toString() }
            }
        }
    }

    /** Headless benchmark for `gs-bench --target adb`: sample photo, [runs] runs, JSON out. */
    private fun runBenchmarkMode(runs: Int, benchThreads: Int) {
        val dir = getExternalFilesDir(null) ?: filesDir
        File(dir, Benchmark.FILE_NAME).delete()
        timing.text = getString(R.string.benchmarking, runs, benchThreads)
        worker.execute {
            val json = try {
                val model = spec ?: throw IllegalStateException("no model in assets (run gs-export --android)")
                val input = Preprocessing.encode(Images.loadForModel({ assets.open(SAMPLE_ASSET) }, model.input), model.input)
                ModelRunner(assets, model, benchThreads).use { r ->
                    Benchmark.measure(r, input, runs, model.artifactPath).result.toJson()
                }
            } catch (e: Throwable) {
                "{\"error\": ${Stats.jsonString(e.toString())}}"
            }
            Log.i(Benchmark.TAG, json)
            val file = Benchmark.write(dir, json)
            runOnUiThread { timing.text = getString(R.string.benchmark_done, file.path, json) }
        }
    }

    private fun runnerFor(model: ModelSpec, n: Int): ModelRunner {
        val current = runner
        if (current != null && current.threads == n) return current
        current?.close()
        val created = ModelRunner(assets, model, n)
        runner = created
        return created
    }

    private fun describe(model: ModelSpec, r: ModelRunner): String = String.format(
        Locale.US, getString(R.string.model_info), model.artifactPath, r.modelBytes / 1024.0,
        model.input.shape.joinToString("x"), model.input.dtype, r.initMs
    )

    companion object {
        const val EXTRA_MODE = "mode"
        const val EXTRA_RUNS = "runs"
        const val EXTRA_THREADS = "threads"
        const val MODE_BENCHMARK = "benchmark"
        const val SAMPLE_ASSET = "sample.jpg"
        const val DEFAULT_THREADS = 4
        const val UI_RUNS = 10
        const val REQUEST_PICK = 1
        val THREAD_CHOICES = intArrayOf(1, 2, 4, 8)
    }
}
