import Foundation
import Testing

/// Swift 6.3.1 miscompiles a closure literal inside a `#expect`/`#require`
/// argument when the macro is inside a closure body (a `withRelayd { }` scope,
/// a `forEach`): a later closure literal of the same type in that closure can
/// run the macro argument's closure instead of its own, so a check silently
/// tests the wrong predicate. The rule and why: docs/testing.md, "A toolchain
/// trap". These tests keep the scanner honest and hold every test file to it.
@Suite("Closure literals inside #expect/#require within a closure")
struct MacroClosureLintTests {
    static let testsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent() // RelayCoreTests
        .deletingLastPathComponent() // Tests

    private func lines(_ source: String) -> [Int] {
        MacroClosureScanner.sites(in: source).map(\.macroLine)
    }

    @Test("the reproducer's pattern is flagged: a closure in #expect inside a scope closure")
    func flagsReproducer() {
        let source = """
        @Test func tornTail() async throws {
            try await withRelayd { relayd in
                #expect(await box.wait { $0 == 1 } != nil)
                let r = await box.wait { $0 == 3 }
                #expect(r == 3)
            }
        }
        """
        #expect(MacroClosureScanner.sites(in: source) == [MacroClosureSite(macroLine: 3, closureLine: 3, macro: "#expect")])
    }

    @Test("every form that puts a closure literal in a macro argument inside a closure is flagged")
    func flagsVariants() {
        let source = """
        func f() async throws {
            try await withRelayd(
                acl: acl,
                extra: "x"
            ) { relayd in
                let value = try #require(await eventuallyValue { relayd.lines.first })
                #expect(await eventually { relayd.isUp })
                #expect(xs.contains { x in ys.contains { $0 == x } })
                #expect(ok, "seen: \\(xs.map { $0.name })")
                #expect(throws: RelayError.self) { try parse(value) }
                #expect {
                    try parse(value)
                } throws: { _ in true }
                if ready {
                    #expect(xs.allSatisfy { $0 > 0 })
                }
            }
            [1].forEach { _ in #expect(xs.first { $0 == 1 } == 1) }
            let task = Task {
                #expect(
                    xs.first(where: { $0 == 2 }) == 2
                )
            }
        }
        """
        #expect(lines(source) == [6, 7, 8, 9, 10, 11, 15, 18, 20])
    }

    @Test("closures in #expect directly in a function body, and bodies that are not closures, are not flagged")
    func ignoresFunctionBodies() {
        let source = """
        @Suite("s", .serialized) struct S {
            var computed: Int { 1 }
            var withAccessors: Int {
                get { #expect(xs.first { $0 == 1 } == 1); return 1 }
            }
            init?(x: Int) { #expect(xs.first { $0 == x } == x) }
            @Test("t", arguments: [1, 2])
            func plain(x: Int) async throws -> [Int]? {
                #expect(xs.first { $0 == 1 } == 1)
                #expect(throws: E.self) { try f() }
                if let y = try? await g(), y.isEmpty,
                   z > 0 {
                    #expect(xs.first { $0 == 1 } == 1)
                } else if x > 1 {
                    #expect(xs.first { $0 == 1 } == 1)
                } else {
                    #expect(xs.first { $0 == 1 } == 1)
                }
                for try await line in lines where !line.isEmpty {
                    #expect(line.contains { $0 == "a" })
                }
                guard let q = xs.first(where: { $0 > 0 }) else {
                    #expect(xs.first { $0 == 1 } == 1)
                    return nil
                }
                do {
                    defer { #expect(xs.first { $0 == 1 } == 1) }
                    try f()
                } catch let error as E {
                    #expect(xs.first { $0 == 1 } == 1)
                }
                switch q {
                default: #expect(xs.first { $0 == 1 } == 1)
                }
                while q > 0 { #expect(xs.first { $0 == 1 } == 1) }
                return nil
            }
        }
        """
        #expect(lines(source) == [])
    }

    @Test("braces in strings, comments and plain interpolation are not closures")
    func ignoresStringsAndComments() {
        let source = #"""
        func f() async throws {
            try await withRelayd { relayd in
                #expect(text == "{ not a closure }")
                #expect(text == "value \(relayd.port) } {")
                #expect(text == #"raw { \(x) "quoted" }"#)
                #expect(text == """
                    multi { line
                    """)
                // #expect(xs.first { $0 == 1 } == 1)
                /* #expect(xs.first { $0 == 1 } == 1) /* nested */ */
                #expect(a == b)
            }
        }
        """#
        #expect(lines(source) == [])
    }

    @Test("no test file has a closure literal inside #expect/#require within a closure")
    func testSourcesAreClean() throws {
        let files = try Self.swiftFiles(under: Self.testsDirectory)
        // A wrong root would make this check pass over nothing.
        #expect(files.count > 50, "found only \(files.count) Swift files under \(Self.testsDirectory.path)")
        var report: [String] = []
        for file in files {
            let source = try String(contentsOf: file, encoding: .utf8)
            let sites = MacroClosureScanner.sites(in: source)
            let name = file.path.replacingOccurrences(of: Self.testsDirectory.path + "/", with: "")
            report += sites.map { "Tests/\(name):\($0.macroLine): \($0) — hoist the call into a `let` before the macro" }
        }
        #expect(report.isEmpty, "\(report.count) site(s):\n\(report.joined(separator: "\n"))")
    }

    static func swiftFiles(under directory: URL) throws -> [URL] {
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else {
            throw CocoaError(.fileReadNoSuchFile)
        }
        return walker.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }.sorted { $0.path < $1.path }
    }
}
