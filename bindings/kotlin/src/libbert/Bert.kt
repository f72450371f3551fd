// libbert Kotlin bindings: AutoCloseable classes over the C ABI (include/bert.h) via JNA.
//
// A Model is immutable and may be shared by threads; a Context is used by one thread at a
// time. Every failed call throws BertException carrying the bert_status and the library's
// message. size_t is mapped to Long (64-bit platforms).
package libbert

import com.sun.jna.Library
import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.LongByReference
import com.sun.jna.ptr.PointerByReference

/** The raw C functions, one to one with bert.h. */
@Suppress("FunctionName")
interface LibBert : Library {
    fun bert_version_number(): Int
    fun bert_status_string(status: Int): String
    fun bert_last_error(): String
    fun bert_system_info(): String
    fun bert_backend_available(backend: Int): Byte
    fun bert_model_load_file(path: String, params: Pointer?, out: PointerByReference): Int
    fun bert_model_load_buffer(data: ByteArray?, len: Long, params: Pointer?, out: PointerByReference): Int
    fun bert_model_free(model: Pointer?)
    fun bert_model_hidden_size(model: Pointer?): Long
    fun bert_model_num_layers(model: Pointer?): Long
    fun bert_model_tokenizer(model: Pointer?): Pointer?
    fun bert_context_new(model: Pointer?, params: Pointer?, out: PointerByReference): Int
    fun bert_context_free(context: Pointer?)
    fun bert_tokenizer_new_from_file(path: String, doLowerCase: Byte, out: PointerByReference): Int
    fun bert_tokenizer_free(tokenizer: Pointer?)
    fun bert_tokenize(
        tokenizer: Pointer?, text: ByteArray?, len: Long, ids: IntArray?, offsets: LongArray?,
        capacity: Long, nTokens: LongByReference,
    ): Int
    fun bert_embed(
        context: Pointer?, texts: Array<Pointer>?, lens: LongArray?, nTexts: Long, pooling: Int,
        normalize: Byte, out: FloatArray?, capacity: Long, outLen: LongByReference?,
    ): Int

    companion object {
        const val OK = 0
        const val ERROR_IO = 1
        const val ERROR_INVALID_UTF8 = 2
        const val ERROR_FORMAT = 5
        const val ERROR_INVALID_ARGUMENT = 7
        const val ERROR_NULL_ARGUMENT = 9
        const val ERROR_BUFFER_TOO_SMALL = 10
        const val BACKEND_CPU = 0

        /** Loaded from `jna.library.path` (or the system paths): libbert.so. */
        val lib: LibBert by lazy { Native.load("bert", LibBert::class.java) }
    }
}

/** A failed libbert call. */
class BertException(val status: Int, message: String) : RuntimeException(message)

/** Throws the BertException of a failed call's status (with the library's last message). */
internal fun check(status: Int) {
    if (status != LibBert.OK) {
        val msg = LibBert.lib.bert_last_error().ifEmpty { LibBert.lib.bert_status_string(status) }
        throw BertException(status, msg)
    }
}

/** The handle a `bert_*_new` / `*_load_*` call writes to its out-parameter, checked. */
internal fun newHandle(call: (PointerByReference) -> Int): Pointer {
    val out = PointerByReference()
    check(call(out))
    return out.value
}

enum class Pooling(val value: Int) { CLS(0), MEAN(1), MAX(2), POOLER(3) }

/** One WordPiece token: id and byte span [start, end) in the UTF-8 text. */
data class Token(val id: Int, val start: Long, val end: Long)

private fun tokenize(tokenizer: Pointer?, text: String): List<Token> {
    val lib = LibBert.lib
    val bytes = text.toByteArray(Charsets.UTF_8)
    val n = LongByReference()
    val s = lib.bert_tokenize(tokenizer, bytes, bytes.size.toLong(), null, null, 0, n)
    if (s != LibBert.ERROR_BUFFER_TOO_SMALL) check(s)
    if (n.value == 0L) return emptyList()
    val ids = IntArray(n.value.toInt())
    val offsets = LongArray(2 * ids.size)
    check(lib.bert_tokenize(tokenizer, bytes, bytes.size.toLong(), ids, offsets, ids.size.toLong(), n))
    return ids.indices.map { Token(ids[it], offsets[2 * it], offsets[2 * it + 1]) }
}

/** A loaded model and its tokenizer. Thread-safe; must outlive its contexts. */
class Model private constructor(handle: Pointer) : AutoCloseable {
    private var handle: Pointer? = handle
    internal val ptr: Pointer get() = handle ?: throw IllegalStateException("model is closed")

    val hiddenSize: Int get() = LibBert.lib.bert_model_hidden_size(ptr).toInt()
    val numLayers: Int get() = LibBert.lib.bert_model_num_layers(ptr).toInt()

    fun tokenize(text: String): List<Token> = tokenize(LibBert.lib.bert_model_tokenizer(ptr), text)

    override fun close() {
        handle?.let { LibBert.lib.bert_model_free(it) }
        handle = null
    }

    companion object {
        /** Loads a model directory or file (safetensors, TF checkpoint, .bert). */
        fun load(path: String): Model = Model(newHandle { LibBert.lib.bert_model_load_file(path, null, it) })

        /** Loads a model from the bytes of a .bert file. */
        fun fromBuffer(bytes: ByteArray): Model =
            Model(newHandle { LibBert.lib.bert_model_load_buffer(bytes, bytes.size.toLong(), null, it) })
    }
}

/** A standalone tokenizer over a vocab.txt. Thread-safe. */
class Tokenizer(vocabPath: String, doLowerCase: Boolean) : AutoCloseable {
    private var handle: Pointer? =
        newHandle { LibBert.lib.bert_tokenizer_new_from_file(vocabPath, if (doLowerCase) 1 else 0, it) }

    fun tokenize(text: String): List<Token> =
        tokenize(handle ?: throw IllegalStateException("tokenizer is closed"), text)

    override fun close() {
        handle?.let { LibBert.lib.bert_tokenizer_free(it) }
        handle = null
    }
}

/** Per-thread state for running a model. Use from one thread at a time. */
class Context(private val model: Model) : AutoCloseable {
    private var handle: Pointer? = newHandle { LibBert.lib.bert_context_new(model.ptr, null, it) }
    internal val ptr: Pointer get() = handle ?: throw IllegalStateException("context is closed")

    /** One embedding (hiddenSize floats) per text. */
    fun embed(texts: List<String>, pooling: Pooling = Pooling.MEAN, normalize: Boolean = true): List<FloatArray> {
        if (texts.isEmpty()) return emptyList()
        val h = model.hiddenSize
        val encoded = texts.map { it.toByteArray(Charsets.UTF_8) }
        val memories = encoded.map { b -> Memory(maxOf(1, b.size).toLong()).also { m -> m.write(0, b, 0, b.size) } }
        val lens = LongArray(texts.size) { encoded[it].size.toLong() }
        val out = FloatArray(texts.size * h)
        check(
            LibBert.lib.bert_embed(
                handle ?: throw IllegalStateException("context is closed"),
                memories.toTypedArray<Pointer>(), lens, texts.size.toLong(), pooling.value,
                if (normalize) 1 else 0, out, out.size.toLong(), null,
            ),
        )
        return texts.indices.map { out.copyOfRange(it * h, (it + 1) * h) }
    }

    override fun close() {
        handle?.let { LibBert.lib.bert_context_free(it) }
        handle = null
    }
}
