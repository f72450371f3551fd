// libbert for Android: AutoCloseable classes over the JNI entry points of libbert.so
// (ffi/src/jni.rs, feature `jni`), with the API of the desktop JNA binding
// (bindings/kotlin/src/libbert) in package libbert.jni.
//
// A Model is immutable and may be shared by threads; a Context is used by one thread at a
// time. Every failed call throws BertException carrying the bert_status and the library's
// message.
package libbert.jni

/** A failed libbert call; [status] is the C ABI's bert_status. */
class BertException(val status: Int, message: String) : RuntimeException(message) {
    companion object {
        const val ERROR_IO = 1
        const val ERROR_INVALID_UTF8 = 2
        const val ERROR_FORMAT = 5
        const val ERROR_INVALID_ARGUMENT = 7
        const val ERROR_INTERNAL = 12
        const val ERROR_LABEL = 13
        const val ERROR_DIVERGED = 14
        const val ERROR_NOT_A_CLASSIFIER = 15
        const val ERROR_EMPTY_DATA = 16
    }
}

enum class Pooling(val value: Int) { CLS(0), MEAN(1), MAX(2), POOLER(3) }

/** One WordPiece token: id and byte span [start, end) in the UTF-8 text. */
data class Token(val id: Int, val start: Long, val end: Long)

/** `bert_version_number()`: major * 10000 + minor * 100 + patch. */
fun versionNumber(): Int = Native.version()

/** A loaded model and its tokenizer. Thread-safe; must outlive its contexts. */
class Model private constructor(private var handle: Long) : AutoCloseable {
    internal val ptr: Long get() = handle.takeIf { it != 0L } ?: throw IllegalStateException("model is closed")

    val hiddenSize: Int get() = Native.modelHiddenSize(ptr)

    fun tokenize(text: String): List<Token> {
        val t = Native.modelTokenize(ptr, text)
        return (0 until t.size / 3).map { Token(t[3 * it].toInt(), t[3 * it + 1], t[3 * it + 2]) }
    }

    override fun close() {
        val h = handle
        handle = 0
        Native.modelFree(h)
    }

    companion object {
        /** Loads a model directory or file (safetensors, TF checkpoint, .bert). */
        fun load(path: String): Model = Model(Native.modelLoad(path))
    }
}

/** Per-thread state for running a model. Use from one thread at a time. */
class Context(private val model: Model, threads: Int = 0) : AutoCloseable {
    private var handle: Long = Native.contextNew(threads)
    internal val ptr: Long get() = handle.takeIf { it != 0L } ?: throw IllegalStateException("context is closed")

    /** One embedding (hiddenSize floats) per text. */
    fun embed(texts: List<String>, pooling: Pooling = Pooling.MEAN, normalize: Boolean = true): List<FloatArray> {
        if (texts.isEmpty()) return emptyList()
        val h = model.hiddenSize
        val out = Native.embed(model.ptr, ptr, texts.toTypedArray(), pooling.value, normalize)
        return texts.indices.map { out.copyOfRange(it * h, (it + 1) * h) }
    }

    override fun close() {
        val h = handle
        handle = 0
        Native.contextFree(h)
    }
}
