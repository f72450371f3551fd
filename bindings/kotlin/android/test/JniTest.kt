// The JNI binding on a desktop JVM against the real all-MiniLM-L6-v2 and the Rust API's
// outputs, bit for bit: the embedding of examples/embed_reference.rs, and two fine-tuning
// updates (cancelled by the progress callback after the first, then resumed), evaluation and
// classification of examples/finetune_reference.rs; with SQUAD_BERT and ANSWERS_TXT, one
// question answered as examples/squad_reference.rs answers it. Exits non-zero on a failure.
//   java -Djava.library.path=DIR_OF_libbert.so -cp ... libbert.jni.JniTestKt \
//       MODEL_DIR EMBED_REFERENCE_TXT SST2_DIR FINETUNE_REFERENCE_TXT WORK_DIR [SQUAD_BERT ANSWERS_TXT]
package libbert.jni

import java.io.File
import kotlin.system.exitProcess

private var passed = 0
private var failed = 0

private fun test(name: String, body: () -> Unit) {
    try {
        body()
        passed++
        println("PASS $name")
    } catch (e: Throwable) {
        failed++
        println("FAIL $name: $e")
    }
}

private fun expect(cond: Boolean, what: String) {
    if (!cond) throw AssertionError(what)
}

private inline fun expectStatus(status: Int, body: () -> Unit) {
    try {
        body()
    } catch (e: BertException) {
        expect(e.status == status, "status ${e.status} (${e.message}), expected $status")
        expect(!e.message.isNullOrEmpty(), "empty message")
        return
    }
    throw AssertionError("no BertException, expected status $status")
}

/** [got] has the bits of [reference], the Rust API's shortest text of an f32 or f64. */
private fun same(got: Number, reference: String) = when (got) {
    is Float -> got.toRawBits() == reference.toFloat().toRawBits()
    else -> got.toDouble().toRawBits() == reference.toDouble().toRawBits()
}

fun main(args: Array<String>) {
    val (dir, embedRef, sst2, tuneRef, work) = args
    val ref = File(embedRef).readLines().filter { it.isNotBlank() }.map { it.toFloat() }
    val tune = File(tuneRef).readLines().filter { it.isNotBlank() }.associate {
        val (k, v) = it.split(" ")
        k to v
    }
    val sentence = "The quick brown fox jumps over the lazy dog."

    test("version") { expect(versionNumber() == 100, "version number ${versionNumber()}") }
    test("embedding equals the Rust API's bit for bit") {
        Model.load(dir).use { model ->
            Context(model, threads = 2).use { ctx ->
                val v = ctx.embed(listOf(sentence, "Hello world"))
                expect(v.size == 2 && v[0].size == 384 && ref.size == 384, "shapes")
                val differ = v[0].indices.count { v[0][it].toRawBits() != ref[it].toRawBits() }
                println("JNI: embedding differs from the Rust API's in $differ of 384 values")
                expect(differ == 0, "$differ values differ")
            }
        }
    }
    test("tokenize") {
        Model.load(dir).use { model ->
            val toks = model.tokenize("The quick brown fox")
            expect(toks.size == 4 && toks[3] == Token(toks[3].id, 16, 19), "tokens $toks")
            val accents = model.tokenize("Café")
            expect(accents.last().end == 5L, "byte offsets in UTF-8: $accents")
        }
    }
    test("errors are BertExceptions") {
        expectStatus(BertException.ERROR_IO) { Model.load("/nonexistent/model") }
        Model.load(dir).use { model ->
            Context(model).use { ctx ->
                expectStatus(BertException.ERROR_INVALID_ARGUMENT) {
                    Native.embed(model.ptr, ctx.ptr, arrayOf("x"), 42, true)
                }
            }
            val m = model
            m.close()
            try {
                m.tokenize("x")
                throw AssertionError("a closed model was used")
            } catch (e: IllegalStateException) {
                // expected
            }
        }
        expectStatus(BertException.ERROR_NOT_A_CLASSIFIER) { Classifier(dir) }
    }
    test("fine-tune 2 updates, cancel and resume, classify: the Rust API's numbers") {
        val params = TrainerParams.defaults().copy(
            trainBatchSize = 2, numTrainEpochs = 1.0, maxSeqLength = 32, threads = 2, labels = listOf("0", "1"),
        )
        expect(params.learningRate == 5e-5f && params.seed == 12345L, "defaults $params")
        val path = "$work/jni_classifier.bert"
        val got = linkedMapOf<String, Number>()
        Trainer(dir, params).use { t ->
            t.addExample("a gorgeous , witty , seductive movie .", 1)
            t.addExample("dull and lifeless", "0")
            t.addExample("an absolute joy from start to finish", 1)
            t.addExample("the plot is nothing but boilerplate", 0)
            t.addTsv("$sst2/dev.tsv", "sst-2", Split.EVAL)
            expect(t.numTrainSteps == 2L && t.numExamples(Split.EVAL) == 8L, "steps ${t.numTrainSteps}")
            expectStatus(BertException.ERROR_LABEL) { t.addExample("bad", 2) }
            val record = { p: Progress ->
                got["step${p.step}.loss"] = p.loss
                got["step${p.step}.learning_rate"] = p.learningRate
                got["step${p.step}.grad_norm"] = p.gradNorm
            }
            expect(!t.train { p -> record(p); p.step != 1L }, "a callback returning false cancels")
            expect(t.globalStep == 1L, "cancelled after update 1")
            expect(t.train { p -> record(p); true }, "then training goes on")
            expect(t.globalStep == 2L, "2 updates")
            val r = t.evaluate()
            expect(r.examples == 8L && r.globalStep == 2L, "eval $r")
            got["eval.loss"] = r.loss
            got["eval.accuracy"] = r.accuracy
            t.save(path)
        }
        Classifier(path).use { c ->
            expect(c.labels == listOf("0", "1"), "labels ${c.labels}")
            c.newContext(threads = 2, maxSeqLength = 32).use { ctx ->
                val p = ctx.classify(listOf("a fine film", "A man plays."), listOf("", "Music."))
                for (i in 0..1) for (j in 0..1) got["p$i.$j"] = p[i][j]
            }
        }
        expect(got.keys == tune.keys, "values ${got.keys}, reference ${tune.keys}")
        val differ = got.filter { (k, v) -> !same(v, tune.getValue(k)) }
        println("JNI: fine-tuning values ${got.size}, differing from the Rust API's: $differ")
        expect(differ.isEmpty(), "differ: $differ (reference $tune)")
    }
    test("an exception in the progress callback stops training and propagates") {
        val params = TrainerParams.defaults().copy(
            trainBatchSize = 2, numTrainEpochs = 1.0, maxSeqLength = 32, threads = 1, numLabels = 2,
        )
        Trainer(dir, params).use { t ->
            t.addExample("good", 1)
            t.addExample("bad", 0)
            try {
                t.train { throw IllegalArgumentException("stop here") }
                throw AssertionError("no exception")
            } catch (e: IllegalArgumentException) {
                expect(e.message == "stop here", "message ${e.message}")
            }
            expect(t.globalStep == 1L, "the update before the exception is kept")
        }
    }
    if (args.size >= 7) test("answer a question as the Rust API does") {
        // "start end score text" per answer, best first.
        val want = File(args[6]).readLines().filter { it.isNotBlank() }.map {
            val f = it.split(" ", limit = 4)
            Triple(f[0].toLong() to f[1].toLong(), f[2], f[3])
        }
        val question = "Which NFL team won Super Bowl 50?"
        val context = "Super Bowl 50 was an American football game to determine the champion of the National " +
            "Football League (NFL) for the 2015 season. The American Football Conference (AFC) champion Denver " +
            "Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24\u201310 to " +
            "earn their third Super Bowl title."
        QuestionAnswerer(args[5]).use { qa ->
            qa.newContext(threads = 1).use { ctx ->
                val got = ctx.answer(question, context, QaOptions(nBest = 3))
                expect(want.size == 3 && got.size == want.size, "got $got, want $want")
                for ((g, w) in got.zip(want)) {
                    expect((g.startByte to g.endByte) == w.first && g.text == w.third, "got $g, want $w")
                    expect(same(g.score, w.second), "score: got $g, want $w")
                }
                expectStatus(BertException.ERROR_INVALID_ARGUMENT) { ctx.answer(question, context, QaOptions(nBest = 5000)) }
            }
        }
    }
    println("$passed passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
