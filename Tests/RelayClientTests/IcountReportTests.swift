import Foundation
import RelayTestSupport
import Testing

/// `scripts/icount_report.py`, the arithmetic behind `scripts/icount.sh`'s
/// instructions per message (docs/performance.md, "Instruction counts (wave
/// 6)"): two callgrind profiles of a known program, with N and 2N messages,
/// must give back the per-message costs they were built from. (The script
/// itself needs valgrind and minutes, so it is not run here.)
@Suite("icount report")
struct IcountReportTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var report: String { repository.appendingPathComponent("scripts/icount_report.py").path }

    /// A callgrind profile (format of valgrind 3.19) of a made-up relayd that
    /// handled `n` messages. Fixed: 1,000 Ir in `start_thread`. Per message:
    /// `work` 100 Ir self; `mdb_txn_commit` in liblmdb, called once, 50 Ir and
    /// half a syscall; `rec` 10 Ir self, calling itself (`rec'2`, callgrind's
    /// name for a function already on the stack) for 20 Ir.
    /// Names are compressed ("(id) name" once, then "(id)"), as callgrind writes them.
    static func profile(messages n: Int) -> String {
        """
        # callgrind format
        version: 1
        creator: callgrind-3.19.0
        positions: line
        events: Ir sysCount
        summary: \(1_000 + 180 * n) \(n / 2)

        ob=(1) /tmp/icount/relayd
        fl=(1) ???
        fn=(1) start_thread
        0 1000
        cfn=(2) work
        calls=1 0
        0 \(180 * n) \(n / 2)

        fn=(2)
        0 \(100 * n)
        cob=(2) /usr/lib/x86_64-linux-gnu/liblmdb.so.0.0.0
        cfi=(1)
        cfn=(3) mdb_txn_commit
        calls=\(n) 0
        0 \(50 * n) \(n / 2)
        cfn=(4) rec
        calls=\(n) 0
        0 \(30 * n)

        fn=(4)
        0 \(10 * n)
        cfn=(5) rec'2
        calls=\(n) 0
        0 \(20 * n)

        fn=(5)
        0 \(20 * n)

        ob=(2)
        fl=(1)
        fn=(3)
        0 \(50 * n) \(n / 2)

        """
    }

    struct Report: Decodable {
        var ir_per_msg: Double
        var syscalls_per_msg: Double
        var calls_per_msg: [String: Double]
        var by_library: [String: Double]
        var top_inclusive: [[InclusiveField]]
        var top_self: [[InclusiveField]]
    }

    /// One element of a `[name, Ir per message]` pair.
    enum InclusiveField: Decodable, Equatable {
        case name(String), value(Double)
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) { self = .name(text) } else { self = .value(try container.decode(Double.self)) }
        }
    }

    func pairs(_ rows: [[InclusiveField]]) -> [String: Double] {
        var result: [String: Double] = [:]
        for row in rows {
            if row.count == 2, case .name(let name) = row[0], case .value(let value) = row[1] { result[name] = value }
        }
        return result
    }

    @Test("(profile(2N) - profile(N)) / N gives the per-message Ir, syscalls, calls, libraries and inclusive costs")
    func perMessageFromTwoProfiles() async throws {
        let directory = try TemporaryDirectory(prefix: "icount-report")
        defer { directory.remove() }
        try Self.profile(messages: 1_000).write(toFile: directory.file("small.out"), atomically: true, encoding: .utf8)
        try Self.profile(messages: 2_000).write(toFile: directory.file("big.out"), atomically: true, encoding: .utf8)
        let child = try await ChildProcess("/usr/bin/env", ["python3", Self.report, "--demangler", "", "--json", directory.file("report.json"),
                                                      "synthetic", "1000", directory.file("small.out"), directory.file("big.out")])
        child.closeStdin()
        let status = try #require(await child.waitForExit(timeout: 15), "icount_report.py did not finish:\n\(child.transcript)")
        #expect(status == 0, "\(child.transcript)")
        #expect(child.stdoutLines.first?.hasPrefix("synthetic: relayd 180 Ir/msg, 0.500 syscalls/msg") == true, "\(child.transcript)")

        let report = try JSONDecoder().decode(Report.self, from: Data(contentsOf: directory.url.appendingPathComponent("report.json")))
        #expect(report.ir_per_msg == 180)
        #expect(report.syscalls_per_msg == 0.5)
        #expect(report.calls_per_msg["LMDB commits (mdb_txn_commit)"] == 1)
        // Self costs by library: work + rec + rec'2 in relayd, the commit in LMDB; the fixed 1,000 cancels out.
        #expect(report.by_library == ["relayd": 130, "liblmdb.so.0.0.0": 50])
        let inclusive = pairs(report.top_inclusive)
        // rec once (10 + its recursive call's 20), not twice; rec'2 is a level of rec, not a row;
        // start_thread is thread plumbing, left out.
        #expect(inclusive["work [relayd]"] == 180)
        #expect(inclusive["rec [relayd]"] == 30)
        #expect(inclusive["mdb_txn_commit [liblmdb.so.0.0.0]"] == 50)
        #expect(inclusive.keys.sorted() == ["mdb_txn_commit [liblmdb.so.0.0.0]", "rec [relayd]", "work [relayd]"])
        // Self: rec'2's 20 folded into rec.
        #expect(pairs(report.top_self)["rec [relayd]"] == 30)
    }

    @Test("a profile without its summary line (relayd killed before callgrind wrote it) is refused, not counted as zero")
    func truncatedProfileIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "icount-report")
        defer { directory.remove() }
        let truncated = Self.profile(messages: 1_000).split(separator: "\n").filter { !$0.hasPrefix("summary:") }.joined(separator: "\n")
        try truncated.write(toFile: directory.file("small.out"), atomically: true, encoding: .utf8)
        try Self.profile(messages: 2_000).write(toFile: directory.file("big.out"), atomically: true, encoding: .utf8)
        let child = try await ChildProcess("/usr/bin/env", ["python3", Self.report, "--demangler", "", "synthetic", "1000",
                                                      directory.file("small.out"), directory.file("big.out")])
        child.closeStdin()
        let status = try #require(await child.waitForExit(timeout: 15), "icount_report.py did not finish:\n\(child.transcript)")
        #expect(status != 0)
        let refusedByName = child.stderrLines.contains { $0.contains("not a complete callgrind profile") }
        #expect(refusedByName, "\(child.transcript)")
    }
}
