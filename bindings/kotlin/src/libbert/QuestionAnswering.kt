// libbert Kotlin bindings, question answering: QuestionAnswerer over the C ABI's bert_qa (JNA).
// size_t is mapped to Long (64-bit platforms).
package libbert

import com.sun.jna.Library
import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.Structure
import com.sun.jna.ptr.LongByReference
import com.sun.jna.ptr.PointerByReference

/** bert_qa_params, field for field. */
@Structure.FieldOrder(
    "size", "n_best", "max_answer_length", "max_seq_length", "doc_stride", "max_query_length", "batch_size",
)
open class QaParamsStruct : Structure() {
    @JvmField var size: Long = 0
    @JvmField var n_best: Int = 0
    @JvmField var max_answer_length: Int = 0
    @JvmField var max_seq_length: Int = 0
    @JvmField var doc_stride: Int = 0
    @JvmField var max_query_length: Int = 0
    @JvmField var batch_size: Int = 0

    class ByValue : QaParamsStruct(), Structure.ByValue
}

/** The raw C functions of question answering, one to one with bert.h. */
@Suppress("FunctionName")
interface LibBertQa : Library {
    fun bert_qa_default_params(): QaParamsStruct.ByValue
    fun bert_qa_load_file(path: String, params: ModelParamsStruct?, out: PointerByReference): Int
    fun bert_qa_free(qa: Pointer?)
    fun bert_qa_model(qa: Pointer?): Pointer?
    fun bert_qa_answer_batch(
        context: Pointer?, qa: Pointer?, questions: Array<Pointer>?, questionLens: LongArray?,
        contexts: Array<Pointer>?, contextLens: LongArray?, n: Long, params: QaParamsStruct?,
        spans: Pointer?, capacity: Long, counts: LongArray?, outLen: LongByReference?,
    ): Int

    companion object {
        /** sizeof(bert_qa_span): start_byte, end_byte (u64), score (f32), padded to 8. */
        const val SPAN_SIZE = 24L

        val lib: LibBertQa by lazy { Native.load("bert", LibBertQa::class.java) }
    }
}

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
    internal fun struct(): QaParamsStruct {
        // A by-reference copy of the defaults (a ByValue instance would be passed by value).
        val d = LibBertQa.lib.bert_qa_default_params()
        val p = QaParamsStruct()
        p.size = d.size
        p.n_best = if (nBest != 0) nBest else d.n_best
        p.max_answer_length = if (maxAnswerLength != 0) maxAnswerLength else d.max_answer_length
        p.max_seq_length = maxSeqLength
        p.doc_stride = docStride
        p.max_query_length = maxQueryLength
        p.batch_size = if (batchSize != 0) batchSize else d.batch_size
        return p
    }
}

/** Native copies of UTF-8 texts for an array-of-pointers argument. */
private fun nativeBytes(texts: List<ByteArray>): Pair<Array<Pointer>, LongArray> {
    val ptrs = texts.map { b -> Memory(maxOf(1, b.size).toLong()).also { it.write(0, b, 0, b.size) } }
    return Pair(ptrs.toTypedArray<Pointer>(), LongArray(texts.size) { texts[it].size.toLong() })
}

/** One answer: UTF-8 bytes [startByte, endByte) of the context, their [text], and its score. */
data class Answer(val text: String, val startByte: Long, val endByte: Long, val score: Float)

/**
 * A SQuAD-fine-tuned model: what `bert squad --do_predict` loads. Thread-safe; answer through a
 * [QaContext] per thread.
 */
class QuestionAnswerer(path: String, dtype: DType = DType.AUTO) : AutoCloseable {
    private var handle: Pointer? = newHandle { LibBertQa.lib.bert_qa_load_file(path, modelParams(dtype), it) }
    internal val ptr: Pointer get() = handle ?: throw IllegalStateException("question answerer is closed")

    fun newContext(threads: Int = 0) = QaContext(this, threads)

    override fun close() {
        handle?.let { LibBertQa.lib.bert_qa_free(it) }
        handle = null
    }
}

/** Per-thread state for answering. Use from one thread at a time; the answerer must outlive it. */
class QaContext internal constructor(private val qa: QuestionAnswerer, threads: Int) : AutoCloseable {
    private var handle: Pointer? =
        newHandle { LibBertTrain.lib.bert_context_new(LibBertQa.lib.bert_qa_model(qa.ptr), contextParams(threads), it) }

    /** The best answers to [question] in [context], best first (none for a context without words). */
    fun answer(question: String, context: String, options: QaOptions = QaOptions()): List<Answer> =
        answerBatch(listOf(question to context), options)[0]

    /** [answer] for (question, context) pairs, their windows batched together; one list per pair. */
    fun answerBatch(pairs: List<Pair<String, String>>, options: QaOptions = QaOptions()): List<List<Answer>> {
        if (pairs.isEmpty()) return emptyList()
        val (pq, lq) = nativeBytes(pairs.map { it.first.toByteArray(Charsets.UTF_8) })
        val contexts = pairs.map { it.second.toByteArray(Charsets.UTF_8) }
        val (pc, lc) = nativeBytes(contexts)
        val p = options.struct()
        val k = p.n_best.toLong()
        val spans = Memory(maxOf(1L, pairs.size * k * LibBertQa.SPAN_SIZE))
        val counts = LongArray(pairs.size)
        check(
            LibBertQa.lib.bert_qa_answer_batch(
                handle ?: throw IllegalStateException("context is closed"), qa.ptr, pq, lq, pc, lc,
                pairs.size.toLong(), p, spans, pairs.size * k, counts, null,
            ),
        )
        return pairs.indices.map { i ->
            (0 until counts[i]).map { j ->
                val off = (i * k + j) * LibBertQa.SPAN_SIZE
                val a = spans.getLong(off)
                val b = spans.getLong(off + 8)
                val text = String(contexts[i], a.toInt(), (b - a).toInt(), Charsets.UTF_8)
                Answer(text, a, b, spans.getFloat(off + 16))
            }
        }
    }

    override fun close() {
        handle?.let { LibBertTrain.lib.bert_context_free(it) }
        handle = null
    }
}
