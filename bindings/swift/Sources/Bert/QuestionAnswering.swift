// libbert Swift bindings, question answering: final classes over bert_qa that free in deinit.
// A QuestionAnswerer is immutable (share it between threads; one QAContext per thread).
import CBert

/// One answer: UTF-8 bytes [startByte, endByte) of the context, their text, and its score
/// (softmax over the question's best candidates).
public struct Answer: Equatable {
    public let text: String
    public let startByte: Int, endByte: Int
    public let score: Float
}

public final class QuestionAnswerer {
    let handle: OpaquePointer

    /// Loads what `bert squad --do_predict` loads (a .bert file written by `bert squad
    /// --do_train`, or a checkpoint holding cls/squad/*); `params` from
    /// bert_model_default_params() gives the back end, dtype, vocabulary and casing.
    public init(path: String, params: bert_model_params = bert_model_default_params()) throws {
        var p = params
        var out: OpaquePointer?
        try check(bert_qa_load_file(path, &p, &out))
        handle = out!
    }

    deinit { bert_qa_free(handle) }
}

public final class QAContext {
    let handle: OpaquePointer
    let qa: QuestionAnswerer  // keeps the answerer alive

    public init(qa: QuestionAnswerer, threads: UInt32 = 0) throws {
        var params = bert_context_default_params()
        params.n_threads = threads
        var out: OpaquePointer?
        try check(bert_context_new(bert_qa_model(qa.handle), &params, &out))
        handle = out!
        self.qa = qa
    }

    deinit { bert_context_free(handle) }

    static func answers(_ context: String, _ spans: ArraySlice<bert_qa_span>) -> [Answer] {
        let bytes = Array(context.utf8)
        return spans.map { s in
            let a = Int(s.start_byte), b = Int(s.end_byte)
            return Answer(text: String(decoding: bytes[a..<b], as: UTF8.self), startByte: a, endByte: b,
                          score: s.score)
        }
    }

    /// The params.n_best best answers to `question` in `context`, best first.
    public func answer(_ question: String, in context: String,
                       params: bert_qa_params = bert_qa_default_params()) throws -> [Answer] {
        var p = params
        var spans = [bert_qa_span](repeating: bert_qa_span(), count: Int(p.n_best))
        var n = 0
        try check(bert_qa_answer(handle, qa.handle, question, question.utf8.count, context, context.utf8.count,
                                 &p, &spans, spans.count, &n))
        return QAContext.answers(context, spans[0..<n])
    }

    /// answer() for (question, context) pairs, their windows batched together; one list per pair.
    public func answerBatch(_ pairs: [(String, String)],
                            params: bert_qa_params = bert_qa_default_params()) throws -> [[Answer]] {
        if pairs.isEmpty { return [] }
        var p = params
        let k = Int(p.n_best)
        var spans = [bert_qa_span](repeating: bert_qa_span(), count: pairs.count * k)
        var counts = [Int](repeating: 0, count: pairs.count)
        try withCStrings(pairs.map { $0.0 }) { pq, lq in
            var pq = pq, lq = lq
            try withCStrings(pairs.map { $0.1 }) { pc, lc in
                var pc = pc, lc = lc
                try check(bert_qa_answer_batch(handle, qa.handle, &pq, &lq, &pc, &lc, pairs.count, &p, &spans,
                                               spans.count, &counts, nil))
            }
        }
        return pairs.indices.map { i in QAContext.answers(pairs[i].1, spans[i * k..<i * k + counts[i]]) }
    }
}
