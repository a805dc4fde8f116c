package com.gsmobile.demo

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * One tensor as described by manifest.json (`artifacts[].inputs[0]` / `outputs[0]`).
 *
 * [shape] is NHWC; [scale]/[zeroPoint] are null for float tensors.
 */
class TensorSpec(
    val shape: IntArray,
    val dtype: String,
    val scale: Double?,
    val zeroPoint: Int?
) {
    val height: Int get() = shape[1]
    val width: Int get() = shape[2]
    val channels: Int get() = shape[3]

    /** Number of bytes of the whole tensor. */
    val byteSize: Int get() = shape.fold(1) { a, b -> a * b } * Preprocessing.bytesPerElement(dtype)
}

/**
 * The app's pixel <-> tensor conversion: pure functions on IntArray/ByteArray, no Android types.
 *
 * Mirrored line by line by `export/android_assets.py` (the host test compiles this file with
 * kotlinc and compares its bytes with the Python twin). All arithmetic is in Double with the
 * same operation order on both sides, so results are bit-identical. Pixels are packed ARGB ints
 * (as `Bitmap.getPixels` returns them); tensors are RGB NHWC with batch 1.
 *
 * Conventions (docs/CONTRACTS.md): x = pixel / 127.5 - 1; pixel = rint((y + 1) * 127.5) clipped
 * to 0..255; q = clamp(rint(x / scale) + zero_point); real = (q - zero_point) * scale.
 * rint rounds half to even, like numpy.rint.
 */
object Preprocessing {
    const val PIXEL_HALF_RANGE = 127.5
    const val PIXEL_OFFSET = 1.0

    /** Bytes per tensor element for a manifest dtype. */
    fun bytesPerElement(dtype: String): Int = when (dtype) {
        "int8", "uint8" -> 1
        "float32" -> 4
        else -> throw IllegalArgumentException("unsupported tensor dtype: $dtype")
    }

    /** Integer range of a quantised dtype as (min, max). */
    fun quantRange(dtype: String): IntArray = when (dtype) {
        "int8" -> intArrayOf(-128, 127)
        "uint8" -> intArrayOf(0, 255)
        else -> throw IllegalArgumentException("not a quantised dtype: $dtype")
    }

    /** Pixel value 0..255 -> model real value in [-1, 1]. */
    fun pixelToReal(p: Int): Double = p / PIXEL_HALF_RANGE - PIXEL_OFFSET

    /** Model real value (tanh range) -> pixel 0..255. */
    fun realToPixel(y: Double): Int = clamp(Math.rint((y + PIXEL_OFFSET) * PIXEL_HALF_RANGE), 0, 255)

    /** Real value -> quantised integer in [qmin, qmax]. */
    fun quantize(real: Double, scale: Double, zeroPoint: Int, qmin: Int, qmax: Int): Int =
        clamp(Math.rint(real / scale) + zeroPoint, qmin, qmax)

    /** Quantised integer -> real value. */
    fun dequantize(q: Int, scale: Double, zeroPoint: Int): Double = (q - zeroPoint) * scale

    /**
     * Centre-crop [src] (srcW x srcH, ARGB) to the aspect ratio of dstW x dstH and resize it
     * bilinearly (half-pixel centres, edge clamped) to dstW x dstH. Returns ARGB, alpha 255.
     *
     * For large downscales decode the bitmap subsampled first (BitmapFactory inSampleSize) so
     * that the source is at most about twice the target size; bilinear alone would alias.
     */
    fun centerCropResize(src: IntArray, srcW: Int, srcH: Int, dstW: Int, dstH: Int): IntArray {
        require(src.size == srcW * srcH) { "pixel array does not match ${srcW}x$srcH" }
        // Largest crop with the target aspect ratio, centred (integer arithmetic).
        var cropW = srcW
        var cropH = (srcW.toLong() * dstH / dstW).toInt()
        if (cropH > srcH) {
            cropH = srcH
            cropW = (srcH.toLong() * dstW / dstH).toInt()
        }
        val x0 = (srcW - cropW) / 2
        val y0 = (srcH - cropH) / 2
        val out = IntArray(dstW * dstH)
        for (y in 0 until dstH) {
            val sy = (y + 0.5) * cropH / dstH - 0.5
            val yLo = clamp(Math.floor(sy), 0, cropH - 1)
            val yHi = Math.min(yLo + 1, cropH - 1)
            val wy = clampUnit(sy - yLo)
            for (x in 0 until dstW) {
                val sx = (x + 0.5) * cropW / dstW - 0.5
                val xLo = clamp(Math.floor(sx), 0, cropW - 1)
                val xHi = Math.min(xLo + 1, cropW - 1)
                val wx = clampUnit(sx - xLo)
                var argb = 0xFF shl 24
                for (shift in intArrayOf(16, 8, 0)) {
                    val a = channel(src[(y0 + yLo) * srcW + x0 + xLo], shift)
                    val b = channel(src[(y0 + yLo) * srcW + x0 + xHi], shift)
                    val c = channel(src[(y0 + yHi) * srcW + x0 + xLo], shift)
                    val d = channel(src[(y0 + yHi) * srcW + x0 + xHi], shift)
                    val top = a * (1.0 - wx) + b * wx
                    val bottom = c * (1.0 - wx) + d * wx
                    argb = argb or (clamp(Math.rint(top * (1.0 - wy) + bottom * wy), 0, 255) shl shift)
                }
                out[y * dstW + x] = argb
            }
        }
        return out
    }

    /** ARGB pixels -> raw input tensor bytes (RGB NHWC, little-endian for float32). */
    fun encode(pixels: IntArray, spec: TensorSpec): ByteArray {
        val buf = ByteBuffer.allocate(pixels.size * 3 * bytesPerElement(spec.dtype)).order(ByteOrder.LITTLE_ENDIAN)
        val range = if (spec.dtype == "float32") null else quantRange(spec.dtype)
        for (p in pixels) {
            for (shift in intArrayOf(16, 8, 0)) {
                val real = pixelToReal(channel(p, shift))
                if (range == null) {
                    buf.putFloat(real.toFloat())
                } else {
                    buf.put(quantize(real, spec.scale!!, spec.zeroPoint!!, range[0], range[1]).toByte())
                }
            }
        }
        return buf.array()
    }

    /** Raw output tensor bytes (RGB NHWC) -> ARGB pixels. */
    fun decode(bytes: ByteArray, spec: TensorSpec): IntArray {
        val buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)
        val n = bytes.size / (3 * bytesPerElement(spec.dtype))
        val out = IntArray(n)
        for (i in 0 until n) {
            var argb = 0xFF shl 24
            for (shift in intArrayOf(16, 8, 0)) {
                val real = when (spec.dtype) {
                    "float32" -> buf.getFloat().toDouble()
                    "uint8" -> dequantize(buf.get().toInt() and 0xFF, spec.scale!!, spec.zeroPoint!!)
                    else -> dequantize(buf.get().toInt(), spec.scale!!, spec.zeroPoint!!)
                }
                argb = argb or (realToPixel(real) shl shift)
            }
            out[i] = argb
        }
        return out
    }

    private fun channel(argb: Int, shift: Int): Int = (argb shr shift) and 0xFF

    private fun clamp(v: Double, lo: Int, hi: Int): Int = Math.max(lo.toDouble(), Math.min(hi.toDouble(), v)).toInt()

    private fun clampUnit(v: Double): Double = Math.max(0.0, Math.min(1.0, v))
}
