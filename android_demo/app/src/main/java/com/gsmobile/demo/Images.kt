package com.gsmobile.demo

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import java.io.InputStream

/** Bitmap <-> ARGB pixel arrays at the model's input size. */
object Images {
    /**
     * Decode an image (opened twice by [open]: bounds, then pixels), subsampled by a power of
     * two while it stays at least twice the target size, then centre-crop + resize it to
     * [spec]'s height x width with [Preprocessing.centerCropResize]. EXIF rotation is ignored.
     */
    fun loadForModel(open: () -> InputStream, spec: TensorSpec): IntArray {
        val bounds = BitmapFactory.Options()
        bounds.inJustDecodeBounds = true
        open().use { BitmapFactory.decodeStream(it, null, bounds) }
        require(bounds.outWidth > 0 && bounds.outHeight > 0) { "not a decodable image" }
        var sample = 1
        while (bounds.outWidth / (sample * 2) >= 2 * spec.width && bounds.outHeight / (sample * 2) >= 2 * spec.height) {
            sample *= 2
        }
        val options = BitmapFactory.Options()
        options.inSampleSize = sample
        options.inPreferredConfig = Bitmap.Config.ARGB_8888
        val bitmap = open().use { BitmapFactory.decodeStream(it, null, options) }
            ?: throw IllegalArgumentException("could not decode image")
        val pixels = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        val out = Preprocessing.centerCropResize(pixels, bitmap.width, bitmap.height, spec.width, spec.height)
        bitmap.recycle()
        return out
    }

    /** ARGB pixels -> a Bitmap for an ImageView. */
    fun toBitmap(pixels: IntArray, spec: TensorSpec): Bitmap =
        Bitmap.createBitmap(pixels, spec.width, spec.height, Bitmap.Config.ARGB_8888)
}
