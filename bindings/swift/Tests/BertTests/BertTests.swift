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

    /// One question answered with the tiny SQuAD model as the Rust API answers it
    /// (LIBBERT_SQUAD_MODEL and LIBBERT_SQUAD_ANSWERS, written by examples/squad_reference.rs:
    /// "start end score text" per line, best first).
    func testAnswerMatchesRust() throws {
        let env = ProcessInfo.processInfo.environment
        let want: [Answer] = try String(contentsOfFile: env["LIBBERT_SQUAD_ANSWERS"]!)
            .split(separator: "\n").map { line in
                let f = line.split(separator: " ", maxSplits: 3).map(String.init)
                return Answer(text: f[3], startByte: Int(f[0])!, endByte: Int(f[1])!, score: Float(f[2])!)
            }
        let question = "Which NFL team won Super Bowl 50?"
        let context = "Super Bowl 50 was an American football game to determine the champion of the National "
            + "Football League (NFL) for the 2015 season. The American Football Conference (AFC) champion Denver "
            + "Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24\u{2013}10 to "
            + "earn their third Super Bowl title."
        let qa = try QuestionAnswerer(path: env["LIBBERT_SQUAD_MODEL"]!)
        let ctx = try QAContext(qa: qa, threads: 1)
        var params = bert_qa_default_params()
        params.n_best = 3
        let got = try ctx.answer(question, in: context, params: params)
        XCTAssertEqual(want.count, 3)
        XCTAssertEqual(got.count, want.count)
        for (g, w) in zip(got, want) {
            XCTAssertEqual([g.startByte, g.endByte], [w.startByte, w.endByte])
            XCTAssertEqual(g.text, w.text)
            XCTAssertLessThanOrEqual(abs(g.score - w.score), 1e-6)
        }
        let batch = try ctx.answerBatch([(question, context), ("Who?", "")], params: params)
        XCTAssertEqual(batch.count, 2)
        XCTAssertEqual(batch[0], got)
        XCTAssertTrue(batch[1].isEmpty)
    }
}
