// libbert Swift bindings, fine-tuning and classification: final classes over bert_classifier and
// bert_trainer that free in deinit. A Classifier is immutable (share it between threads; one
// ClassifierContext per thread); a Trainer is used by one thread at a time.
import CBert

/// Copies texts into C strings for an array-of-pointers argument; `body` sees the pointers
/// and lengths, then the copies are freed.
func withCStrings<R>(_ texts: [String], _ body: ([UnsafePointer<CChar>?], [Int]) throws -> R) rethrows -> R {
    let cstrings = texts.map { strdup($0) }
    defer { cstrings.forEach { free($0) } }
    return try body(cstrings.map { UnsafePointer($0) }, texts.map { $0.utf8.count })
}

public final class Classifier {
    let handle: OpaquePointer

    /// Loads a .bert file written by Trainer.save or `bert classify --do_train`; `params` from
    /// bert_model_default_params() gives the back end, dtype and verify_checksums.
    public init(path: String, params: bert_model_params = bert_model_default_params()) throws {
        var p = params
        var out: OpaquePointer?
        try check(bert_classifier_load_file(path, &p, &out))
        handle = out!
    }

    deinit { bert_classifier_free(handle) }

    /// Label names; label id i is labels[i].
    public var labels: [String] {
        (0..<bert_classifier_num_labels(handle)).map { String(cString: bert_classifier_label(handle, $0)) }
    }
}

public final class ClassifierContext {
    let handle: OpaquePointer
    let classifier: Classifier  // keeps the classifier alive

    public init(classifier: Classifier, threads: UInt32 = 0, maxSeqLength: UInt32 = 0) throws {
        var params = bert_context_default_params()
        params.n_threads = threads
        params.max_seq_length = maxSeqLength
        var out: OpaquePointer?
        try check(bert_context_new(bert_classifier_model(classifier.handle), &params, &out))
        handle = out!
        self.classifier = classifier
    }

    deinit { bert_context_free(handle) }

    /// Class probabilities, one row per text (or pair, when textsB is given).
    public func classify(_ textsA: [String], _ textsB: [String]? = nil) throws -> [[Float]] {
        if textsA.isEmpty { return [] }
        let k = classifier.labels.count
        var probs = [Float](repeating: 0, count: textsA.count * k)
        var written = 0
        try withCStrings(textsA) { pa, la in
            var pa = pa, la = la
            if let textsB = textsB {
                try withCStrings(textsB) { pb, lb in
                    var pb = pb, lb = lb
                    try check(bert_classify(handle, classifier.handle, &pa, &la, &pb, &lb, textsA.count,
                                            nil, &probs, probs.count, &written))
                }
            } else {
                try check(bert_classify(handle, classifier.handle, &pa, &la, nil, nil, textsA.count,
                                        nil, &probs, probs.count, &written))
            }
        }
        return (0..<textsA.count).map { Array(probs[$0 * k..<($0 + 1) * k]) }
    }
}

public enum Split: Int32 {
    case train = 0, eval = 1
}

public struct Progress {
    public let step: UInt64, totalSteps: UInt64
    public let loss: Float, learningRate: Float
    public let gradNorm: Double, examplesPerSecond: Double, elapsedSeconds: Double
}

/// Boxes the Swift progress closure for the C callback's user_data.
final class ProgressBox {
    let body: (Progress) -> Bool
    init(_ body: @escaping (Progress) -> Bool) { self.body = body }
}

public final class Trainer {
    let handle: OpaquePointer

    /// `params` from bert_trainer_default_params(), changed as needed (labels are copied).
    public init(modelPath: String, params: bert_trainer_params = bert_trainer_default_params(),
                labels: [String] = []) throws {
        var p = params
        var out: OpaquePointer?
        try withCStrings(labels) { names, _ in
            var names = names
            if !labels.isEmpty { p.n_labels = labels.count }
            try names.withUnsafeMutableBufferPointer { buf in
                if !labels.isEmpty { p.labels = UnsafePointer(buf.baseAddress) }
                try check(bert_trainer_new(modelPath, &p, &out))
            }
        }
        handle = out!
    }

    deinit { bert_trainer_free(handle) }

    public func addExample(_ text: String, label: Int32, textB: String? = nil, split: Split = .train) throws {
        try check(bert_trainer_add_example(handle, split.rawValue, text, text.utf8.count, textB,
                                           textB?.utf8.count ?? 0, label))
    }

    public func addExample(_ text: String, labelName: String, textB: String? = nil, split: Split = .train) throws {
        try check(bert_trainer_add_example_label(handle, split.rawValue, text, text.utf8.count, textB,
                                                 textB?.utf8.count ?? 0, labelName, labelName.utf8.count))
    }

    /// Adds the rows of a tab-separated file laid out as GLUE task `taskName` ("sst-2", ...).
    public func addTSV(path: String, taskName: String, split: Split = .train) throws {
        var params = bert_tsv_default_params()
        try taskName.withCString { name in
            params.task_name = name
            try check(bert_trainer_add_tsv(handle, split.rawValue, path, &params))
        }
    }

    public func numExamples(_ split: Split = .train) -> Int { bert_trainer_num_examples(handle, split.rawValue) }
    public var numTrainSteps: UInt64 { bert_trainer_num_train_steps(handle) }
    public var globalStep: UInt64 { bert_trainer_global_step(handle) }
    public var numLabels: Int { bert_trainer_num_labels(handle) }

    /// Runs up to maxSteps updates (0: to the end). `progress` returning false stops after
    /// that update: train then returns false (BERT_ERROR_CANCELLED); call again to go on.
    @discardableResult
    public func train(maxSteps: UInt64 = 0, progress: ((Progress) -> Bool)? = nil) throws -> Bool {
        var status: bert_status
        if let progress = progress {
            let box = Unmanaged.passRetained(ProgressBox(progress))
            defer { box.release() }
            status = bert_trainer_train(handle, maxSteps, { p, user in
                guard let p = p?.pointee, let user = user else { return 1 }
                let f = Unmanaged<ProgressBox>.fromOpaque(user).takeUnretainedValue().body
                let go = f(Progress(step: p.step, totalSteps: p.total_steps, loss: p.loss,
                                    learningRate: p.learning_rate, gradNorm: p.grad_norm,
                                    examplesPerSecond: p.examples_per_second, elapsedSeconds: p.elapsed_seconds))
                return go ? 0 : 1
            }, box.toOpaque())
        } else {
            status = bert_trainer_train(handle, maxSteps, nil, nil)
        }
        if status == BERT_ERROR_CANCELLED { return false }
        try check(status)
        return true
    }

    public func evaluate() throws -> bert_eval_result {
        var r = bert_eval_result()
        r.size = MemoryLayout<bert_eval_result>.size
        try check(bert_trainer_evaluate(handle, &r))
        return r
    }

    /// Writes the fine-tuned classifier (.bert, for Classifier) atomically.
    public func save(path: String) throws { try check(bert_trainer_save(handle, path)) }
    public func saveCheckpoint(path: String) throws { try check(bert_trainer_save_checkpoint(handle, path)) }
    public func resume(path: String) throws { try check(bert_trainer_resume(handle, path)) }
}

public enum Log {
    /// Sends libbert's log lines to a C function (nil: silence, the default).
    public static func set(_ callback: bert_log_callback?, userData: UnsafeMutableRawPointer? = nil) {
        bert_log_set(callback, userData)
    }
}
