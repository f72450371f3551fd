// libbert Swift bindings, pre-training: create_pretraining_data.py (PretrainingData.create) and
// run_pretraining.py (Pretrainer, a final class over bert_pretrainer that frees in deinit; one
// thread at a time).
import CBert

/// Copies of Swift strings as C strings, freed when the owner goes: params structs hold
/// `const char *` fields that must stay valid during the call.
final class CStringCopies {
    private var copies: [UnsafeMutablePointer<CChar>] = []
    func add(_ s: String?) -> UnsafePointer<CChar>? {
        guard let s = s, let c = strdup(s) else { return nil }
        copies.append(c)
        return UnsafePointer(c)
    }
    deinit { copies.forEach { free($0) } }
}

public enum PretrainingData {
    /// Writes the records create_pretraining_data.py writes for the same text and flags:
    /// `params` from bert_pretraining_data_default_params() (the flags), the files given here.
    @discardableResult
    public static func create(inputFile: String, outputFile: String, vocabFile: String,
                              params: bert_pretraining_data_params = bert_pretraining_data_default_params())
        throws -> bert_pretraining_data_summary {
        let strings = CStringCopies()
        var p = params
        p.input_file = strings.add(inputFile)
        p.output_file = strings.add(outputFile)
        p.vocab_file = strings.add(vocabFile)
        var s = bert_pretraining_data_summary()
        s.size = MemoryLayout<bert_pretraining_data_summary>.size
        try check(bert_pretraining_data_create(&p, nil, nil, &s))
        return s
    }
}

final class PretrainProgressBox {
    let body: (bert_pretrain_progress) -> Bool
    init(_ body: @escaping (bert_pretrain_progress) -> Bool) { self.body = body }
}

public final class Pretrainer {
    let handle: OpaquePointer

    /// From `configFile` with `initCheckpoint` (nil: from scratch), or from any model
    /// `initCheckpoint` names with `configFile` nil; `params` from
    /// bert_pretrainer_default_params(). Resumes from outputDir's state when there is one.
    public init(configFile: String?, initCheckpoint: String?, outputDir: String, inputFile: String?,
                evalInputFile: String? = nil,
                params: bert_pretrainer_params = bert_pretrainer_default_params()) throws {
        let strings = CStringCopies()
        var p = params
        p.output_dir = strings.add(outputDir)
        p.input_file = strings.add(inputFile)
        p.eval_input_file = strings.add(evalInputFile)
        var out: OpaquePointer?
        try check(bert_pretrainer_new(strings.add(configFile), strings.add(initCheckpoint), &p, &out))
        handle = out!
    }

    deinit { bert_pretrainer_free(handle) }

    public var globalStep: UInt64 { bert_pretrainer_global_step(handle) }
    public var numExamples: UInt64 { bert_pretrainer_num_examples(handle) }

    /// Runs up to maxSteps updates (0: to the end), saving the state to outputDir. `progress`
    /// returning false stops after that update (kept and saved): train then returns false.
    @discardableResult
    public func train(maxSteps: UInt64 = 0, progress: ((bert_pretrain_progress) -> Bool)? = nil) throws -> Bool {
        var status: bert_status
        if let progress = progress {
            let box = Unmanaged.passRetained(PretrainProgressBox(progress))
            defer { box.release() }
            status = bert_pretrainer_train(handle, maxSteps, { p, user in
                guard let p = p?.pointee, let user = user else { return 1 }
                return Unmanaged<PretrainProgressBox>.fromOpaque(user).takeUnretainedValue().body(p) ? 0 : 1
            }, box.toOpaque())
        } else {
            status = bert_pretrainer_train(handle, maxSteps, nil, nil)
        }
        if status == BERT_ERROR_CANCELLED { return false }
        try check(status)
        return true
    }

    /// run_pretraining.py's evaluation (also written to outputDir/eval_results.txt).
    public func evaluate() throws -> bert_pretrain_eval_result {
        var r = bert_pretrain_eval_result()
        r.size = MemoryLayout<bert_pretrain_eval_result>.size
        try check(bert_pretrainer_evaluate(handle, &r))
        return r
    }

    public func saveCheckpoint(path: String) throws { try check(bert_pretrainer_save_checkpoint(handle, path)) }
    public func resume(path: String) throws { try check(bert_pretrainer_resume(handle, path)) }
}
