// libbert for Android, fine-tuning and classification: Trainer and Classifier over the JNI
// entry points (ffi/src/jni.rs), with the API of the desktop JNA binding's Trainer.kt.
package libbert.jni

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
            val d = Native.trainerDefaults()
            return TrainerParams(
                d[0].toFloat(), d[1].toFloat(), d[2], d[3].toInt(), d[4].toInt(), d[5].toInt(), 0, d[6].toLong(),
                maxGradNorm = d[7].toFloat(), gradientCheckpointing = d[8] != 0.0,
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
    private var handle: Long = Native.trainerNew(
        modelPath, params.learningRate, params.warmupProportion, params.numTrainEpochs,
        params.trainBatchSize, params.gradientAccumulationSteps, params.maxSeqLength, params.threads,
        params.seed, params.labels.takeIf { it.isNotEmpty() }?.toTypedArray(), params.numLabels,
        params.gradientCheckpointing, params.maxGradNorm,
    )
    private val ptr: Long get() = handle.takeIf { it != 0L } ?: throw IllegalStateException("trainer is closed")

    /** Adds text (with optional second text) labelled by id to a set. */
    fun addExample(text: String, label: Int, textB: String? = null, split: Split = Split.TRAIN) =
        Native.trainerAddExample(ptr, split.value, text, textB, label, null)

    /** Adds text (with optional second text) labelled by name to a set. */
    fun addExample(text: String, label: String, textB: String? = null, split: Split = Split.TRAIN) =
        Native.trainerAddExample(ptr, split.value, text, textB, -1, label)

    /** Adds the rows of a tab-separated file laid out as GLUE task [taskName] ("sst-2", ...). */
    fun addTsv(path: String, taskName: String, split: Split = Split.TRAIN) =
        Native.trainerAddTsv(ptr, split.value, path, taskName)

    fun numExamples(split: Split = Split.TRAIN): Long = Native.trainerCounts(ptr)[split.value]
    val numTrainSteps: Long get() = Native.trainerCounts(ptr)[2]
    val globalStep: Long get() = Native.trainerCounts(ptr)[3]

    /**
     * Runs up to [maxSteps] updates (0: to the end). [progress] returning false stops after
     * that update: then train returns false; call again to go on. An exception thrown by
     * [progress] stops training and is rethrown here.
     */
    fun train(maxSteps: Long = 0, progress: ((Progress) -> Boolean)? = null): Boolean {
        val listener = progress?.let { f ->
            ProgressListener { step, total, loss, lr, norm, eps, elapsed ->
                f(Progress(step, total, loss, lr, norm, eps, elapsed))
            }
        }
        return Native.trainerTrain(ptr, maxSteps, listener)
    }

    fun evaluate(): EvalResult {
        val r = Native.trainerEvaluate(ptr)
        return EvalResult(r[0].toLong(), r[1].toLong(), r[2], r[3], r[4], r[5])
    }

    /** Writes the fine-tuned classifier (.bert, for [Classifier]) atomically. */
    fun save(path: String) = Native.trainerSave(ptr, path)

    override fun close() {
        val h = handle
        handle = 0
        Native.trainerFree(h)
    }
}

/** A fine-tuned classifier. Thread-safe; classify through a [ClassifierContext] per thread. */
class Classifier(path: String) : AutoCloseable {
    private var handle: Long = Native.classifierLoad(path)
    internal val ptr: Long get() = handle.takeIf { it != 0L } ?: throw IllegalStateException("classifier is closed")

    val labels: List<String> get() = Native.classifierLabels(ptr).toList()

    fun newContext(threads: Int = 0, maxSeqLength: Int = 128) = ClassifierContext(this, threads, maxSeqLength)

    override fun close() {
        val h = handle
        handle = 0
        Native.classifierFree(h)
    }
}

/** Per-thread state for classifying. Use from one thread at a time; the classifier must outlive it. */
class ClassifierContext internal constructor(
    private val classifier: Classifier,
    threads: Int,
    private val maxSeqLength: Int,
) : AutoCloseable {
    private var handle: Long = Native.contextNew(threads)

    /** Class probabilities, one row per text (or pair, when [textsB] is given). */
    fun classify(textsA: List<String>, textsB: List<String>? = null): List<FloatArray> {
        if (textsA.isEmpty()) return emptyList()
        require(textsB == null || textsB.size == textsA.size) { "textsB must be null or as long as textsA" }
        val k = classifier.labels.size
        val p = Native.classify(
            classifier.ptr, handle.takeIf { it != 0L } ?: throw IllegalStateException("context is closed"),
            textsA.toTypedArray(), textsB?.toTypedArray(), maxSeqLength,
        )
        return textsA.indices.map { p.copyOfRange(it * k, (it + 1) * k) }
    }

    override fun close() {
        val h = handle
        handle = 0
        Native.contextFree(h)
    }
}
