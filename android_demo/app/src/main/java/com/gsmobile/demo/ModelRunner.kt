package com.gsmobile.demo

import android.content.res.AssetManager
import org.tensorflow.lite.Interpreter
import java.io.Closeable
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/** The LiteRT interpreter on assets/model.tflite (memory-mapped: it must be stored uncompressed). */
class ModelRunner(assets: AssetManager, val spec: ModelSpec, val threads: Int) : Closeable {
    /** Wall time of loading the model and creating the interpreter, in ms. */
    val initMs: Double
    /** Size of model.tflite in bytes. */
    val modelBytes: Long
    private val interpreter: Interpreter
    private val inputBuffer = ByteBuffer.allocateDirect(spec.input.byteSize).order(ByteOrder.nativeOrder())
    private val outputBuffer = ByteBuffer.allocateDirect(spec.output.byteSize).order(ByteOrder.nativeOrder())

    init {
        val t0 = System.nanoTime()
        val model = mapAsset(assets, MODEL_ASSET)
        modelBytes = model.capacity().toLong()
        val options = Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true)
        interpreter = Interpreter(model, options)
        initMs = elapsedMs(t0)
    }

    /** Run once on raw input tensor bytes; returns raw output tensor bytes. */
    fun run(input: ByteArray): ByteArray {
        inputBuffer.rewind()
        inputBuffer.put(input)
        inputBuffer.rewind()
        outputBuffer.rewind()
        interpreter.run(inputBuffer, outputBuffer)
        outputBuffer.rewind()
        val out = ByteArray(outputBuffer.capacity())
        outputBuffer.get(out)
        return out
    }

    /** Run once and return the wall time in ms. */
    fun timedRun(input: ByteArray): Double {
        val t0 = System.nanoTime()
        run(input)
        return elapsedMs(t0)
    }

    override fun close() = interpreter.close()

    companion object {
        const val MODEL_ASSET = "model.tflite"
        const val MANIFEST_ASSET = "manifest.json"

        fun elapsedMs(t0: Long): Double = (System.nanoTime() - t0) / 1e6

        private fun mapAsset(assets: AssetManager, name: String): MappedByteBuffer {
            // openFd throws if the asset is compressed; the mapping outlives the closed descriptor.
            assets.openFd(name).use { fd ->
                FileInputStream(fd.fileDescriptor).use { stream ->
                    return stream.channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
                }
            }
        }
    }
}
