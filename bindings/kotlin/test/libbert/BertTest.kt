// Kotlin bindings against the real all-MiniLM-L6-v2: the embedding equals the Rust API's
// (max abs diff <= 1e-6), tokenizer, errors as BertException. Exits non-zero on a failure.
// With SST2_DIR and WORK_DIR: a 2-update fine-tune with a progress callback, then classify.
// With SQUAD_BERT and ANSWERS_TXT (examples/squad_reference.rs): one question answered as the
// Rust API answers it.
//   java ... libbert.BertTestKt MODEL_DIR REFERENCE_TXT [SST2_DIR WORK_DIR [SQUAD_BERT ANSWERS_TXT]]
package libbert

import java.io.File
import kotlin.math.abs
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

fun main(args: Array<String>) {
    val dir = args[0]
    val ref = File(args[1]).readLines().filter { it.isNotBlank() }.map { it.toFloat() }
    val sentence = "The quick brown fox jumps over the lazy dog."

    test("version") {
        expect(LibBert.lib.bert_version_number() == 100, "version number")
        expect(LibBert.lib.bert_backend_available(LibBert.BACKEND_CPU) == 1.toByte(), "cpu backend")
        expect(LibBert.lib.bert_system_info().startsWith("libbert "), "system info")
    }
    test("embedding equals the Rust API's") {
        Model.load(dir).use { model ->
            Context(model).use { ctx ->
                val v = ctx.embed(listOf(sentence, "Hello world"))
                expect(v.size == 2 && v[0].size == 384 && ref.size == 384, "shapes")
                val d = v[0].indices.maxOf { abs(v[0][it] - ref[it]) }
                println("Kotlin: max abs diff vs Rust API $d")
                expect(d <= 1e-6f, "max abs diff $d")
            }
        }
    }
    test("tokenize") {
        Model.load(dir).use { model ->
            val toks = model.tokenize("The quick brown fox")
            expect(toks.size == 4 && toks[3] == Token(toks[3].id, 16, 19), "tokens $toks")
            Tokenizer("$dir/vocab.txt", true).use { t -> expect(t.tokenize("The quick brown fox") == toks, "standalone") }
        }
    }
    test("errors") {
        expectStatus(LibBert.ERROR_IO) { Model.load("/nonexistent/model") }
        expectStatus(LibBert.ERROR_FORMAT) { Model.fromBuffer("not a model".toByteArray()) }
        expectStatus(LibBert.ERROR_IO) { Tokenizer("/nonexistent/vocab.txt", true) }
        Model.load(dir).use { model ->
            Context(model).use { ctx ->
                val lib = LibBert.lib
                val out = FloatArray(384)
                val p = lib.bert_embed(ctx.ptr, arrayOf(com.sun.jna.Memory(2)), longArrayOf(1), 1, 42, 1, out, 384, null)
                expect(p == LibBert.ERROR_INVALID_ARGUMENT, "bad pooling gives $p")
                val s = lib.bert_embed(null, null, null, 1, 1, 1, null, 0, null)
                expect(s == LibBert.ERROR_NULL_ARGUMENT, "NULL context gives $s")
                val bad = byteArrayOf(0x63, 0x61, 0x66, 0xc3.toByte())
                val n = com.sun.jna.ptr.LongByReference()
                val t = lib.bert_tokenize(lib.bert_model_tokenizer(model.ptr), bad, 4, null, null, 0, n)
                expect(t == LibBert.ERROR_INVALID_UTF8, "invalid UTF-8 gives $t")
            }
        }
    }
    if (args.size >= 4) test("fine-tune 2 updates, then classify") {
        val params = TrainerParams.defaults().copy(
            trainBatchSize = 2, numTrainEpochs = 1.0, maxSeqLength = 32, threads = 2, labels = listOf("0", "1"),
        )
        val path = "${args[3]}/kotlin_classifier.bert"
        Trainer(dir, params).use { t ->
            t.addExample("a gorgeous , witty , seductive movie .", 1)
            t.addExample("dull and lifeless", "0")
            t.addExample("an absolute joy from start to finish", 1)
            t.addExample("the plot is nothing but boilerplate", 0)
            t.addTsv("${args[2]}/dev.tsv", "sst-2", Split.EVAL)
            expect(t.numTrainSteps == 2L && t.numExamples(Split.EVAL) == 8L, "steps ${t.numTrainSteps}")
            expectStatus(LibBertTrain.ERROR_LABEL) { t.addExample("bad", 2) }
            val steps = mutableListOf<Long>()
            expect(!t.train { p -> steps.add(p.step); p.step != 1L }, "a callback returning false cancels")
            expect(t.train { p -> steps.add(p.step); p.loss.isFinite() }, "then training goes on")
            expect(steps == listOf(1L, 2L) && t.globalStep == 2L, "steps $steps")
            val r = t.evaluate()
            expect(r.examples == 8L && r.globalStep == 2L && !r.loss.isNaN(), "eval $r")
            t.save(path)
            println("Kotlin: trained 2 updates, eval accuracy ${r.accuracy}")
        }
        Classifier(path).use { c ->
            expect(c.labels == listOf("0", "1"), "labels ${c.labels}")
            c.newContext(threads = 2, maxSeqLength = 32).use { ctx ->
                val p = ctx.classify(listOf("a fine film", "A man plays."), listOf("", "Music."))
                expect(p.size == 2 && abs(p[0][0] + p[0][1] - 1f) < 1e-6f, "probabilities ${p.map { it.toList() }}")
                println("Kotlin: P(1 | a fine film) = ${p[0][1]}")
            }
        }
        Classifier(path, DType.INT8, verifyChecksums = true).use { c ->
            c.newContext(threads = 1, maxSeqLength = 32).use { ctx ->
                val p = ctx.classify(listOf("a fine film"))
                expect(abs(p[0].sum() - 1f) < 1e-6f, "int8 classifier probabilities ${p[0].toList()}")
            }
        }
        expectStatus(LibBertTrain.ERROR_NOT_A_CLASSIFIER) { Classifier(dir) }
    }
    if (args.size >= 6) test("answer a question as the Rust API does") {
        // "start end score text" per answer, best first.
        val want = File(args[5]).readLines().filter { it.isNotBlank() }.map {
            val f = it.split(" ", limit = 4)
            Answer(f[3], f[0].toLong(), f[1].toLong(), f[2].toFloat())
        }
        val question = "Which NFL team won Super Bowl 50?"
        val context = "Super Bowl 50 was an American football game to determine the champion of the National " +
            "Football League (NFL) for the 2015 season. The American Football Conference (AFC) champion Denver " +
            "Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24\u201310 to " +
            "earn their third Super Bowl title."
        QuestionAnswerer(args[4]).use { qa ->
            qa.newContext(threads = 1).use { ctx ->
                val got = ctx.answer(question, context, QaOptions(nBest = 3))
                expect(want.size == 3 && got.size == want.size, "got $got, want $want")
                for ((g, w) in got.zip(want)) {
                    expect(g.startByte == w.startByte && g.endByte == w.endByte && g.text == w.text, "got $g, want $w")
                    expect(abs(g.score - w.score) <= 1e-6f, "score: got $g, want $w")
                }
                val batch = ctx.answerBatch(listOf(question to context, "Who?" to ""), QaOptions(nBest = 3))
                expect(batch.size == 2 && batch[0] == got && batch[1].isEmpty(), "batch $batch")
                expectStatus(LibBert.ERROR_INVALID_ARGUMENT) { ctx.answer(question, context, QaOptions(nBest = 5000)) }
                println("Kotlin: answer \"${got[0].text}\" (${got[0].score})")
            }
        }
    }
    println("$passed passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
