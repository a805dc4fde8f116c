package com.gsmobile.demo

import java.io.File

/** Packs raw RGB bytes (H*W*3) into ARGB ints, as Bitmap.getPixels returns them. */
fun rgbToArgb(raw: ByteArray): IntArray = IntArray(raw.size / 3) { i ->
    (0xFF shl 24) or ((raw[3 * i].toInt() and 0xFF) shl 16) or
        ((raw[3 * i + 1].toInt() and 0xFF) shl 8) or (raw[3 * i + 2].toInt() and 0xFF)
}

/** ARGB ints -> raw RGB bytes. */
fun argbToRgb(pixels: IntArray): ByteArray = ByteArray(pixels.size * 3) { i ->
    ((pixels[i / 3] shr (16 - 8 * (i % 3))) and 0xFF).toByte()
}

/**
 * Test harness for tests/android_demo/test_kotlin_twin.py: runs the app's Preprocessing on a photo.
 * Args: IN_RGB SRC_W SRC_H DST_W DST_H OUT_DIR CASE...; CASE = name,dtype,scale,zero_point
 * ("null" for float). Reads OUT_DIR/NAME.out.bin (an output tensor to decode) and writes
 * resized.rgb, NAME.encoded.bin, NAME.decoded.rgb and bench.json into OUT_DIR.
 */
fun main(args: Array<String>) {
    val srcW = args[1].toInt()
    val srcH = args[2].toInt()
    val dstW = args[3].toInt()
    val dstH = args[4].toInt()
    val out = File(args[5])
    val resized = Preprocessing.centerCropResize(rgbToArgb(File(args[0]).readBytes()), srcW, srcH, dstW, dstH)
    File(out, "resized.rgb").writeBytes(argbToRgb(resized))
    for (case in args.drop(6)) {
        val (name, dtype, scale, zp) = case.split(",")
        val spec = TensorSpec(intArrayOf(1, dstH, dstW, 3), dtype,
            if (scale == "null") null else scale.toDouble(), if (zp == "null") null else zp.toInt())
        File(out, "$name.encoded.bin").writeBytes(Preprocessing.encode(resized, spec))
        val decoded = Preprocessing.decode(File(out, "$name.out.bin").readBytes(), spec)
        File(out, "$name.decoded.rgb").writeBytes(argbToRgb(decoded))
    }
    val bench = BenchResult("model \"q\"", 2, 1.5, 3.25, doubleArrayOf(5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 7.5))
    File(out, "bench.json").writeText(bench.toJson())
}
