// libbert Kotlin bindings, fine-tuning and classification: Trainer and Classifier over the C
// ABI's bert_trainer and bert_classifier (JNA). size_t is mapped to Long (64-bit platforms).
package libbert

import com.sun.jna.Callback
import com.sun.jna.Library
import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.StringArray
import com.sun.jna.Structure
import com.sun.jna.ptr.LongByReference
import com.sun.jna.ptr.PointerByReference

/** bert_trainer_params, field for field. */
@Structure.FieldOrder(
    "size", "learning_rate", "warmup_proportion", "num_train_epochs", "train_batch_size",
    "gradient_accumulation_steps", "max_seq_length", "n_threads", "seed", "labels", "n_labels",
    "do_lower_case", "gradient_checkpointing", "max_grad_norm",
)
open class TrainerParamsStruct : Structure() {
    @JvmField var size: Long = 0
    @JvmField var learning_rate: Float = 0f
    @JvmField var warmup_proportion: Float = 0f
    @JvmField var num_train_epochs: Double = 0.0
    @JvmField var train_batch_size: Int = 0
    @JvmField var gradient_accumulation_steps: Int = 0
    @JvmField var max_seq_length: Int = 0
    @JvmField var n_threads: Int = 0
    @JvmField var seed: Long = 0
    @JvmField var labels: Pointer? = null
    @JvmField var n_labels: Long = 0
    @JvmField var do_lower_case: Int = 0
    @JvmField var gradient_checkpointing: Byte = 0
    @JvmField var max_grad_norm: Float = 0f

    class ByValue : TrainerParamsStruct(), Structure.ByValue
}

/** bert_tsv_params. */
@Structure.FieldOrder("size", "task_name", "text_a_column", "text_b_column", "label_column", "skip_header")
open class TsvParamsStruct : Structure() {
    @JvmField var size: Long = 0
    @JvmField var task_name: String? = null
    @JvmField var text_a_column: Int = 0
    @JvmField var text_b_column: Int = 0
    @JvmField var label_column: Int = 0
    @JvmField var skip_header: Byte = 0

    class ByValue : TsvParamsStruct(), Structure.ByValue
}

/** bert_context_params (the abort callback is left NULL here). */
@Structure.FieldOrder("size", "n_threads", "max_seq_length", "abort_callback", "abort_user_data")
open class ContextParamsStruct : Structure() {
    @JvmField var size: Long = 0
    @JvmField var n_threads: Int = 0
    @JvmField var max_seq_length: Int = 0
    @JvmField var abort_callback: Pointer? = null
    @JvmField var abort_user_data: Pointer? = null

    class ByValue : ContextParamsStruct(), Structure.ByValue
}

/** bert_eval_result; the caller sets `size` (see [Trainer.evaluate]). */
@Structure.FieldOrder("size", "n_examples", "global_step", "accuracy", "loss", "f1", "mcc")
open class EvalResultStruct : Structure() {
    @JvmField var size: Long = 0
    @JvmField var n_examples: Long = 0
    @JvmField var global_step: Long = 0
    @JvmField var accuracy: Double = 0.0
    @JvmField var loss: Double = 0.0
    @JvmField var f1: Double = 0.0
    @JvmField var mcc: Double = 0.0
}

/** bert_model_params, field for field (booleans are bytes). */
@Structure.FieldOrder(
    "size", "backend", "do_lower_case", "vocab_path", "config_json", "config_json_len", "vocab_text",
    "vocab_text_len", "dtype", "verify_checksums",
)
open class ModelParamsStruct : Structure() {
    @JvmField var size: Long = 0
    @JvmField var backend: Int = 0
    @JvmField var do_lower_case: Int = 0
    @JvmField var vocab_path: Pointer? = null
    @JvmField var config_json: Pointer? = null
    @JvmField var config_json_len: Long = 0
    @JvmField var vocab_text: Pointer? = null
    @JvmField var vocab_text_len: Long = 0
    @JvmField var dtype: Int = 0
    @JvmField var verify_checksums: Byte = 0

    class ByValue : ModelParamsStruct(), Structure.ByValue
}

/** bert_dtype: the storage of a model's weights. */
enum class DType(val value: Int) { AUTO(0), F32(1), F16(2), INT8(3) }

/** bert_progress_callback. */
interface ProgressCallback : Callback {
    fun invoke(progress: Pointer, userData: Pointer?): Int
}

/** The raw C functions of fine-tuning and classification, one to one with bert.h. */
@Suppress("FunctionName")
interface LibBertTrain : Library {
    fun bert_trainer_default_params(): TrainerParamsStruct.ByValue
    fun bert_tsv_default_params(): TsvParamsStruct.ByValue
    fun bert_context_default_params(): ContextParamsStruct.ByValue
    fun bert_model_default_params(): ModelParamsStruct.ByValue
    fun bert_trainer_new(path: String, params: TrainerParamsStruct?, out: PointerByReference): Int
    fun bert_trainer_free(trainer: Pointer?)
    fun bert_trainer_add_example(
        trainer: Pointer?, split: Int, a: ByteArray?, lenA: Long, b: ByteArray?, lenB: Long, label: Int,
    ): Int
    fun bert_trainer_add_example_label(
        trainer: Pointer?, split: Int, a: ByteArray?, lenA: Long, b: ByteArray?, lenB: Long,
        label: ByteArray?, labelLen: Long,
    ): Int
    fun bert_trainer_add_tsv(trainer: Pointer?, split: Int, path: String, params: TsvParamsStruct?): Int
    fun bert_trainer_num_examples(trainer: Pointer?, split: Int): Long
    fun bert_trainer_num_train_steps(trainer: Pointer?): Long
    fun bert_trainer_global_step(trainer: Pointer?): Long
    fun bert_trainer_train(trainer: Pointer?, maxSteps: Long, callback: ProgressCallback?, user: Pointer?): Int
    fun bert_trainer_evaluate(trainer: Pointer?, out: EvalResultStruct): Int
    fun bert_trainer_save(trainer: Pointer?, path: String): Int
    fun bert_trainer_save_checkpoint(trainer: Pointer?, path: String): Int
    fun bert_trainer_resume(trainer: Pointer?, path: String): Int
    fun bert_classifier_load_file(path: String, params: ModelParamsStruct?, out: PointerByReference): Int
    fun bert_classifier_free(classifier: Pointer?)
    fun bert_classifier_model(classifier: Pointer?): Pointer?
    fun bert_classifier_num_labels(classifier: Pointer?): Long
    fun bert_classifier_label(classifier: Pointer?, index: Long): String?
    fun bert_context_new(model: Pointer?, params: ContextParamsStruct?, out: PointerByReference): Int
    fun bert_context_free(context: Pointer?)
    fun bert_classify(
        context: Pointer?, classifier: Pointer?, textsA: Array<Pointer>?, lensA: LongArray?,
        textsB: Array<Pointer>?, lensB: LongArray?, n: Long, logits: FloatArray?, probabilities: FloatArray?,
        capacity: Long, outLen: LongByReference?,
    ): Int

    companion object {
        const val ERROR_CANCELLED = 11
        const val ERROR_LABEL = 13
        const val ERROR_DIVERGED = 14
        const val ERROR_NOT_A_CLASSIFIER = 15
        const val ERROR_EMPTY_DATA = 16

        val lib: LibBertTrain by lazy { Native.load("bert", LibBertTrain::class.java) }
    }
}

private fun utf8(s: String) = s.toByteArray(Charsets.UTF_8)

/** A by-reference copy of bert_model_default_params() (a ByValue instance would be passed by value). */
internal fun modelParams(dtype: DType, verifyChecksums: Boolean = false): ModelParamsStruct {
    val d = LibBertTrain.lib.bert_model_default_params()
    val params = ModelParamsStruct()
    params.size = d.size
    params.backend = d.backend
    params.do_lower_case = d.do_lower_case
    params.dtype = dtype.value
    params.verify_checksums = if (verifyChecksums) 1 else 0
    return params
}

/** bert_context_default_params() with [threads] and [maxSeqLength] (0: the model's). */
internal fun contextParams(threads: Int, maxSeqLength: Int = 0): ContextParamsStruct {
    val d = LibBertTrain.lib.bert_context_default_params()
    val p = ContextParamsStruct()
    p.size = d.size
    p.n_threads = threads
    p.max_seq_length = maxSeqLength
    return p
}

/** Native copies of texts for an array-of-pointers argument. */
private fun nativeTexts(texts: List<String>): Pair<Array<Pointer>, LongArray> {
    val bytes = texts.map(::utf8)
    val ptrs = bytes.map { b -> Memory(maxOf(1, b.size).toLong()).also { it.write(0, b, 0, b.size) } }
    return Pair(ptrs.toTypedArray<Pointer>(), LongArray(texts.size) { bytes[it].size.toLong() })
}

enum class Split(val value: Int) { TRAIN(0), EVAL(1) }

/** Hyper-parameters; [TrainerParams.defaults] are run_classifier.py's (from the library). */
data class TrainerParams(
    val learningRate: Float,
    val warmupProportion: Float,
    val numTrainEpochs: Double,
    val trainBatchSize: Int,
    val gradientAccumulationSteps: Int,
    val maxSeqLength: Int,
    val threads: Int,
    val seed: Long,
    /** Label names (id = index); empty with numLabels > 0: "0", "1", ...; both empty: the model's. */
    val labels: List<String> = emptyList(),
    val numLabels: Int = 0,
    /** Recompute activations in the backward pass: less memory, same numbers. */
    val gradientCheckpointing: Boolean = false,
    /** Global-norm clipping threshold; 0 disables clipping. */
    val maxGradNorm: Float = 1.0f,
) {
    companion object {
        fun defaults(): TrainerParams {
            val d = LibBertTrain.lib.bert_trainer_default_params()
            return TrainerParams(
                d.learning_rate, d.warmup_proportion, d.num_train_epochs, d.train_batch_size,
                d.gradient_accumulation_steps, d.max_seq_length, d.n_threads, d.seed,
                gradientCheckpointing = d.gradient_checkpointing.toInt() != 0,
                maxGradNorm = d.max_grad_norm,
            )
        }
    }
}

/** What the progress callback of [Trainer.train] sees after each update. */
data class Progress(
    val step: Long, val totalSteps: Long, val loss: Float, val learningRate: Float,
    val gradNorm: Double, val examplesPerSecond: Double, val elapsedSeconds: Double,
)

/** Scores of [Trainer.evaluate]; f1 and mcc are NaN unless there are two labels. */
data class EvalResult(
    val examples: Long, val globalStep: Long, val accuracy: Double, val loss: Double, val f1: Double, val mcc: Double,
)

/** Fine-tunes a classifier. Use from one thread at a time. */
class Trainer(modelPath: String, params: TrainerParams = TrainerParams.defaults()) : AutoCloseable {
    private var handle: Pointer?
    private val ptr: Pointer get() = handle ?: throw IllegalStateException("trainer is closed")

    init {
        val lib = LibBertTrain.lib
        val p = lib.bert_trainer_default_params()
        val s = TrainerParamsStruct()
        s.size = p.size
        s.learning_rate = params.learningRate
        s.warmup_proportion = params.warmupProportion
        s.num_train_epochs = params.numTrainEpochs
        s.train_batch_size = params.trainBatchSize
        s.gradient_accumulation_steps = params.gradientAccumulationSteps
        s.max_seq_length = params.maxSeqLength
        s.n_threads = params.threads
        s.seed = params.seed
        s.do_lower_case = p.do_lower_case
        s.gradient_checkpointing = if (params.gradientCheckpointing) 1 else 0
        s.max_grad_norm = params.maxGradNorm
        val names = if (params.labels.isEmpty()) null else StringArray(params.labels.toTypedArray(), "UTF-8")
        s.labels = names
        s.n_labels = if (params.labels.isEmpty()) params.numLabels.toLong() else params.labels.size.toLong()
        handle = newHandle { lib.bert_trainer_new(modelPath, s, it) }
    }

    /** Adds text (with optional second text) labelled by id to a set. */
    fun addExample(text: String, label: Int, textB: String? = null, split: Split = Split.TRAIN) {
        val a = utf8(text)
        val b = textB?.let(::utf8)
        check(LibBertTrain.lib.bert_trainer_add_example(ptr, split.value, a, a.size.toLong(), b, (b?.size ?: 0).toLong(), label))
    }

    /** Adds text (with optional second text) labelled by name to a set. */
    fun addExample(text: String, label: String, textB: String? = null, split: Split = Split.TRAIN) {
        val a = utf8(text)
        val b = textB?.let(::utf8)
        val l = utf8(label)
        check(
            LibBertTrain.lib.bert_trainer_add_example_label(
                ptr, split.value, a, a.size.toLong(), b, (b?.size ?: 0).toLong(), l, l.size.toLong(),
            ),
        )
    }

    /** Adds the rows of a tab-separated file laid out as GLUE task [taskName] ("sst-2", ...). */
    fun addTsv(path: String, taskName: String, split: Split = Split.TRAIN) {
        val p = LibBertTrain.lib.bert_tsv_default_params()
        val s = TsvParamsStruct()
        s.size = p.size
        s.task_name = taskName
        s.text_a_column = p.text_a_column
        s.text_b_column = p.text_b_column
        s.label_column = p.label_column
        s.skip_header = p.skip_header
        check(LibBertTrain.lib.bert_trainer_add_tsv(ptr, split.value, path, s))
    }

    fun numExamples(split: Split = Split.TRAIN): Long = LibBertTrain.lib.bert_trainer_num_examples(ptr, split.value)
    val numTrainSteps: Long get() = LibBertTrain.lib.bert_trainer_num_train_steps(ptr)
    val globalStep: Long get() = LibBertTrain.lib.bert_trainer_global_step(ptr)

    /**
     * Runs up to [maxSteps] updates (0: to the end). [progress] returning false stops after
     * that update: then train returns false (BERT_ERROR_CANCELLED); call again to go on.
     */
    fun train(maxSteps: Long = 0, progress: ((Progress) -> Boolean)? = null): Boolean {
        val cb = progress?.let { f ->
            object : ProgressCallback {
                override fun invoke(progress: Pointer, userData: Pointer?): Int {
                    val p = Progress(
                        progress.getLong(8), progress.getLong(16), progress.getFloat(24), progress.getFloat(28),
                        progress.getDouble(32), progress.getDouble(40), progress.getDouble(48),
                    )
                    // No exception may cross into C: one thrown here stops training.
                    return try { if (f(p)) 0 else 1 } catch (e: Throwable) { 1 }
                }
            }
        }
        val s = LibBertTrain.lib.bert_trainer_train(ptr, maxSteps, cb, null)
        if (s == LibBertTrain.ERROR_CANCELLED) return false
        check(s)
        return true
    }

    fun evaluate(): EvalResult {
        val r = EvalResultStruct()
        r.size = r.size().toLong()
        check(LibBertTrain.lib.bert_trainer_evaluate(ptr, r))
        return EvalResult(r.n_examples, r.global_step, r.accuracy, r.loss, r.f1, r.mcc)
    }

    /** Writes the fine-tuned classifier (.bert, for [Classifier]) atomically. */
    fun save(path: String) = check(LibBertTrain.lib.bert_trainer_save(ptr, path))
    fun saveCheckpoint(path: String) = check(LibBertTrain.lib.bert_trainer_save_checkpoint(ptr, path))
    fun resume(path: String) = check(LibBertTrain.lib.bert_trainer_resume(ptr, path))

    override fun close() {
        handle?.let { LibBertTrain.lib.bert_trainer_free(it) }
        handle = null
    }
}

/**
 * A fine-tuned classifier. Thread-safe; classify through a [ClassifierContext] per thread.
 * [dtype] converts the encoder's weights while loading (the head stays f32); [verifyChecksums]
 * verifies the file's f16/int8 blocks while loading.
 */
class Classifier(path: String, dtype: DType = DType.AUTO, verifyChecksums: Boolean = false) : AutoCloseable {
    private var handle: Pointer? =
        newHandle { LibBertTrain.lib.bert_classifier_load_file(path, modelParams(dtype, verifyChecksums), it) }
    internal val ptr: Pointer get() = handle ?: throw IllegalStateException("classifier is closed")

    val labels: List<String>
        get() = (0 until LibBertTrain.lib.bert_classifier_num_labels(ptr)).map {
            LibBertTrain.lib.bert_classifier_label(ptr, it) ?: ""
        }

    fun newContext(threads: Int = 0, maxSeqLength: Int = 0) = ClassifierContext(this, threads, maxSeqLength)

    override fun close() {
        handle?.let { LibBertTrain.lib.bert_classifier_free(it) }
        handle = null
    }
}

/** Per-thread state for classifying. Use from one thread at a time; the classifier must outlive it. */
class ClassifierContext internal constructor(
    private val classifier: Classifier,
    threads: Int,
    maxSeqLength: Int,
) : AutoCloseable {
    private var handle: Pointer? = newHandle {
        val lib = LibBertTrain.lib
        lib.bert_context_new(lib.bert_classifier_model(classifier.ptr), contextParams(threads, maxSeqLength), it)
    }

    /** Class probabilities, one row per text (or pair, when [textsB] is given). */
    fun classify(textsA: List<String>, textsB: List<String>? = null): List<FloatArray> {
        if (textsA.isEmpty()) return emptyList()
        require(textsB == null || textsB.size == textsA.size) { "textsB must be null or as long as textsA" }
        val k = classifier.labels.size
        val (pa, la) = nativeTexts(textsA)
        val b = textsB?.let(::nativeTexts)
        val probs = FloatArray(textsA.size * k)
        check(
            LibBertTrain.lib.bert_classify(
                handle ?: throw IllegalStateException("context is closed"), classifier.ptr, pa, la,
                b?.first, b?.second, textsA.size.toLong(), null, probs, probs.size.toLong(), null,
            ),
        )
        return textsA.indices.map { probs.copyOfRange(it * k, (it + 1) * k) }
    }

    override fun close() {
        handle?.let { LibBertTrain.lib.bert_context_free(it) }
        handle = null
    }
}
