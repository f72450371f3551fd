// Embeds the reference sentence and compares with the Rust API's vector (max abs diff
// <= 1e-6). Needs LIBBERT_MODEL and LIBBERT_REFERENCE as scripts/test_bindings.sh sets them
// (not run here: no Swift toolchain on the CI machines; scripts/check_swift.py checks the
// sources against bert.h instead).
import Foundation
import XCTest

@testable import Bert

final class BertTests: XCTestCase {
    func testEmbeddingMatchesRust() throws {
        let env = ProcessInfo.processInfo.environment
        let model = try Model(path: env["LIBBERT_MODEL"]!)
        let reference = try String(contentsOfFile: env["LIBBERT_REFERENCE"]!)
            .split(separator: "\n").map { Float($0)! }
        let ctx = try Context(model: model)
        let v = try ctx.embed(["The quick brown fox jumps over the lazy dog."])[0]
        XCTAssertEqual(v.count, reference.count)
        let d = zip(v, reference).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(d, 1e-6)
        XCTAssertThrowsError(try Model(path: "/nonexistent/model")) { error in
            XCTAssertEqual((error as! BertError).status, BERT_ERROR_IO)
        }
    }
}
