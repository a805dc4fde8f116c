package org.tensorflow.lite;

import java.nio.ByteBuffer;

/**
 * Compile-only stub of the LiteRT / TensorFlow Lite Java Interpreter API: exactly the members
 * the demo app calls. Used by tools/build_offline.sh to compile the app without Google Maven;
 * never packaged (on a phone the class comes from com.google.ai.edge.litert:litert).
 */
public final class Interpreter implements AutoCloseable {
    /** Interpreter options (subset). */
    public static class Options {
        public Options() {}
        public Options setNumThreads(int numThreads) { throw new UnsupportedOperationException("stub"); }
        public Options setUseXNNPACK(boolean useXNNPACK) { throw new UnsupportedOperationException("stub"); }
    }

    public Interpreter(ByteBuffer byteBuffer, Options options) { throw new UnsupportedOperationException("stub"); }
    public void run(Object input, Object output) { throw new UnsupportedOperationException("stub"); }
    @Override public void close() { throw new UnsupportedOperationException("stub"); }
}
