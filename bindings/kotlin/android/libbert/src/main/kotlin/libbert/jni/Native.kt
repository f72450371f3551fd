// The JNI entry points of libbert.so (built with the `jni` feature of the ffi crate:
// ffi/src/jni.rs), one to one. The classes of Bert.kt and Trainer.kt are the API; this object
// is their plumbing. Handles are native pointers as Long (0: closed).
package libbert.jni

/** Called by [Native.trainerTrain] after each update; return false to stop training. */
fun interface ProgressListener {
    fun onStep(
        step: Long, totalSteps: Long, loss: Float, learningRate: Float,
        gradNorm: Double, examplesPerSecond: Double, elapsedSeconds: Double,
    ): Boolean
}

@Suppress("LongParameterList")
internal object Native {
    init {
        System.loadLibrary("bert")
    }

    @JvmStatic external fun version(): Int

    @JvmStatic external fun modelLoad(path: String): Long
    @JvmStatic external fun modelFree(model: Long)
    @JvmStatic external fun modelHiddenSize(model: Long): Int
    /** `[id, start, end]` per token. */
    @JvmStatic external fun modelTokenize(model: Long, text: String): LongArray

    @JvmStatic external fun contextNew(threads: Int): Long
    @JvmStatic external fun contextFree(context: Long)
    @JvmStatic external fun embed(
        model: Long, context: Long, texts: Array<String>, pooling: Int, normalize: Boolean,
    ): FloatArray

    /** learning rate, warm-up, epochs, batch, accumulation, max_seq_length, seed, clip norm, checkpointing. */
    @JvmStatic external fun trainerDefaults(): DoubleArray
    @JvmStatic external fun trainerNew(
        modelPath: String, learningRate: Float, warmupProportion: Float, numTrainEpochs: Double,
        trainBatchSize: Int, gradientAccumulationSteps: Int, maxSeqLength: Int, threads: Int,
        seed: Long, labels: Array<String>?, numLabels: Int, gradientCheckpointing: Boolean,
        maxGradNorm: Float,
    ): Long
    @JvmStatic external fun trainerFree(trainer: Long)
    @JvmStatic external fun trainerAddExample(
        trainer: Long, split: Int, textA: String, textB: String?, labelId: Int, labelName: String?,
    )
    @JvmStatic external fun trainerAddTsv(trainer: Long, split: Int, path: String, taskName: String)
    /** train examples, eval examples, updates of the run, updates done. */
    @JvmStatic external fun trainerCounts(trainer: Long): LongArray
    @JvmStatic external fun trainerTrain(trainer: Long, maxSteps: Long, listener: ProgressListener?): Boolean
    /** examples, global step, accuracy, loss, f1, mcc. */
    @JvmStatic external fun trainerEvaluate(trainer: Long): DoubleArray
    @JvmStatic external fun trainerSave(trainer: Long, path: String)

    @JvmStatic external fun classifierLoad(path: String): Long
    @JvmStatic external fun classifierFree(classifier: Long)
    @JvmStatic external fun classifierLabels(classifier: Long): Array<String>
    @JvmStatic external fun classify(
        classifier: Long, context: Long, textsA: Array<String>, textsB: Array<String>?, maxSeqLength: Int,
    ): FloatArray

    @JvmStatic external fun qaLoad(path: String): Long
    @JvmStatic external fun qaFree(qa: Long)
    /**
     * `[startByte, endByte, score]` per answer, best first. options: nBest, maxAnswerLength,
     * maxSeqLength, docStride, maxQueryLength, batchSize (0: the default).
     */
    @JvmStatic external fun qaAnswer(qa: Long, context: Long, question: String, text: String, options: IntArray): DoubleArray
}
