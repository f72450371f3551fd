// libbert Swift bindings: final classes over the C ABI that free their handles in deinit.
// A Model is immutable and may be shared by threads; a Context is used by one thread at a
// time and keeps its Model alive. Failed calls throw BertError (status + message).
import CBert

public struct BertError: Error, CustomStringConvertible {
    public let status: Int32
    public let message: String
    public var description: String { "libbert: \(message) (status \(status))" }
}

@inline(__always)
func check(_ status: bert_status) throws {
    if status != BERT_OK {
        var message = String(cString: bert_last_error())
        if message.isEmpty { message = String(cString: bert_status_string(status)) }
        throw BertError(status: status, message: message)
    }
}

public enum Pooling: Int32 {
    case cls = 0, mean = 1, max = 2, pooler = 3
}

public struct Token: Equatable {
    public let id: UInt32
    public let start: Int
    public let end: Int
}

public enum Library {
    public static var versionNumber: UInt32 { bert_version_number() }
    public static var headerVersionNumber: UInt32 { UInt32(BERT_VERSION_NUMBER) }
    public static var systemInfo: String { String(cString: bert_system_info()) }
    public static func backendAvailable(_ backend: Int32) -> Bool { bert_backend_available(backend) }
}

func tokenize(_ tokenizer: OpaquePointer?, _ text: String) throws -> [Token] {
    var utf8 = Array(text.utf8)
    var n = 0
    let status = utf8.withUnsafeMutableBufferPointer { b in
        b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) {
            bert_tokenize(tokenizer, $0, b.count, nil, nil, 0, &n)
        }
    }
    if status != BERT_ERROR_BUFFER_TOO_SMALL { try check(status) }
    var ids = [UInt32](repeating: 0, count: n)
    var offsets = [UInt64](repeating: 0, count: 2 * n)
    let count = n
    try check(utf8.withUnsafeMutableBufferPointer { b in
        b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) {
            bert_tokenize(tokenizer, $0, b.count, &ids, &offsets, count, &n)
        }
    })
    return (0..<n).map { Token(id: ids[$0], start: Int(offsets[2 * $0]), end: Int(offsets[2 * $0 + 1])) }
}

public final class Model {
    let handle: OpaquePointer

    /// Loads a model directory or file (safetensors, TF checkpoint, .bert).
    public init(path: String) throws {
        var params = bert_model_default_params()
        var out: OpaquePointer?
        try check(bert_model_load_file(path, &params, &out))
        handle = out!
    }

    /// Loads a model from the bytes of a .bert file (copied by the library).
    public init(bytes: [UInt8]) throws {
        var out: OpaquePointer?
        try check(bytes.withUnsafeBytes { bert_model_load_buffer($0.baseAddress, $0.count, nil, &out) })
        handle = out!
    }

    deinit { bert_model_free(handle) }

    public var hiddenSize: Int { bert_model_hidden_size(handle) }
    public var numLayers: Int { bert_model_num_layers(handle) }
    public var maxSeqLength: Int { bert_model_max_seq_length(handle) }

    public func tokenize(_ text: String) throws -> [Token] {
        try withExtendedLifetime(self) { try Bert.tokenize(bert_model_tokenizer(handle), text) }
    }
}

public final class Tokenizer {
    let handle: OpaquePointer

    public init(vocabPath: String, doLowerCase: Bool) throws {
        var out: OpaquePointer?
        try check(bert_tokenizer_new_from_file(vocabPath, doLowerCase ? 1 : 0, &out))
        handle = out!
    }

    deinit { bert_tokenizer_free(handle) }

    public func tokenize(_ text: String) throws -> [Token] { try Bert.tokenize(handle, text) }
}

public struct Encoding {
    public let ids: [UInt32], typeIds: [UInt32], attentionMask: [UInt32], specialTokensMask: [UInt32]
    public let offsets: [UInt64]  // 2 per token
}

public struct HiddenStates {
    public let layers: Int, tokens: Int, hiddenSize: Int
    public let data: [Float]  // [layers][tokens][hiddenSize]
}

public final class Context {
    let handle: OpaquePointer
    let model: Model  // keeps the model alive

    public init(model: Model, threads: UInt32 = 0) throws {
        var params = bert_context_default_params()
        params.n_threads = threads
        var out: OpaquePointer?
        try check(bert_context_new(model.handle, &params, &out))
        handle = out!
        self.model = model
    }

    deinit { bert_context_free(handle) }

    public var threads: UInt32 { bert_context_n_threads(handle) }

    /// One embedding of hiddenSize floats per text.
    public func embed(_ texts: [String], pooling: Pooling = .mean, normalize: Bool = true) throws -> [[Float]] {
        if texts.isEmpty { return [] }
        let h = model.hiddenSize
        let cstrings = texts.map { strdup($0) }
        defer { cstrings.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = cstrings.map { UnsafePointer($0) }
        var lens = texts.map { $0.utf8.count }
        var out = [Float](repeating: 0, count: texts.count * h)
        var written = 0
        try check(bert_embed(handle, &pointers, &lens, texts.count, pooling.rawValue, normalize ? 1 : 0,
                             &out, out.count, &written))
        return (0..<texts.count).map { Array(out[$0 * h..<($0 + 1) * h]) }
    }

    /// [CLS] a [SEP] (b [SEP]); the view is copied out before returning.
    public func encode(_ a: String, _ b: String? = nil, maxSeqLength: UInt32 = 0) throws -> Encoding {
        var params = bert_encode_default_params()
        params.max_seq_length = maxSeqLength
        var v = bert_encoding_view()
        v.size = MemoryLayout<bert_encoding_view>.size
        let bb = b ?? ""
        try check(bert_encode(handle, a, a.utf8.count, b == nil ? nil : bb, bb.utf8.count, &params, &v))
        let n = v.n_tokens
        func copy(_ p: UnsafePointer<UInt32>!) -> [UInt32] { Array(UnsafeBufferPointer(start: p, count: n)) }
        return Encoding(ids: copy(v.ids), typeIds: copy(v.type_ids), attentionMask: copy(v.attention_mask),
                        specialTokensMask: copy(v.special_tokens_mask),
                        offsets: Array(UnsafeBufferPointer(start: v.offsets, count: 2 * n)))
    }

    /// Every layer's hidden states for one text (layer 0: the embedding output).
    public func hiddenStates(_ text: String) throws -> HiddenStates {
        var v = bert_hidden_states_view()
        v.size = MemoryLayout<bert_hidden_states_view>.size
        try check(bert_hidden_states(handle, text, text.utf8.count, &v))
        let count = v.n_layers * v.n_tokens * v.hidden_size
        return HiddenStates(layers: v.n_layers, tokens: v.n_tokens, hiddenSize: v.hidden_size,
                            data: Array(UnsafeBufferPointer(start: v.data, count: count)))
    }
}
