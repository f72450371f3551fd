// libbert for Android, question answering: QuestionAnswerer over the JNI entry points of
// libbert.so (ffi/src/jni.rs), as Classifier is.
package libbert.jni

/**
 * bert_qa_params; 0 keeps the library's default (20 answers of at most 30 WordPieces,
 * run_squad.py's windows scaled to the model, 8 windows per batch).
 */
data class QaOptions(
    val nBest: Int = 0,
    val maxAnswerLength: Int = 0,
    val maxSeqLength: Int = 0,
    val docStride: Int = 0,
    val maxQueryLength: Int = 0,
    val batchSize: Int = 0,
) {
    internal fun array() = intArrayOf(nBest, maxAnswerLength, maxSeqLength, docStride, maxQueryLength, batchSize)
}

/** One answer: UTF-8 bytes [startByte, endByte) of the context, their [text], and its score. */
data class Answer(val text: String, val startByte: Long, val endByte: Long, val score: Float)

/** A SQuAD-fine-tuned model (what `bert squad --do_predict` loads). Thread-safe; must outlive its contexts. */
class QuestionAnswerer(path: String) : AutoCloseable {
    private var handle: Long = Native.qaLoad(path)
    internal val ptr: Long get() = handle.takeIf { it != 0L } ?: throw IllegalStateException("question answerer is closed")

    fun newContext(threads: Int = 0) = QaContext(this, threads)

    override fun close() {
        val h = handle
        handle = 0
        Native.qaFree(h)
    }
}

/** Per-thread state for answering. Use from one thread at a time; the answerer must outlive it. */
class QaContext internal constructor(private val qa: QuestionAnswerer, threads: Int) : AutoCloseable {
    private var handle: Long = Native.contextNew(threads)

    /** The best answers to [question] in [context], best first (none for a context without words). */
    fun answer(question: String, context: String, options: QaOptions = QaOptions()): List<Answer> {
        val r = Native.qaAnswer(
            qa.ptr, handle.takeIf { it != 0L } ?: throw IllegalStateException("context is closed"),
            question, context, options.array(),
        )
        val bytes = context.toByteArray(Charsets.UTF_8)
        return (0 until r.size / 3).map {
            val a = r[3 * it].toLong()
            val b = r[3 * it + 1].toLong()
            Answer(String(bytes, a.toInt(), (b - a).toInt(), Charsets.UTF_8), a, b, r[3 * it + 2].toFloat())
        }
    }

    override fun close() {
        val h = handle
        handle = 0
        Native.contextFree(h)
    }
}
