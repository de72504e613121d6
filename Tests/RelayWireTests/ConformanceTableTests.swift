import Foundation
import Testing

/// Protocol/conformance.md must list every MUST, MUST NOT, SHOULD and SHOULD
/// NOT of Protocol/relay-v1.md with the tests that check it (issue #16).
/// This reads both files from the repository, so a requirement added to the
/// spec without a row, a row whose quote no longer is in the spec, a row
/// naming a test that does not exist, or a MUST marked `NO TEST` fails here.
@Suite("Protocol conformance table")
struct ConformanceTableTests {
    @Test("every MUST, MUST NOT, SHOULD and SHOULD NOT of relay-v1.md has a row in conformance.md")
    func everyRequirementHasARow() throws {
        let spec = try Conformance.specRequirements()
        let rows = try Conformance.rows()
        #expect(spec.count >= 7, "found only \(spec.count) requirements in relay-v1.md")
        for requirement in spec {
            let covering = rows.filter { $0.covers(requirement) }
            #expect(!covering.isEmpty,
                    "§\(requirement.section) \(requirement.keyword) has no row in conformance.md: …\(requirement.context)…")
        }
    }

    @Test("every row quotes its section of relay-v1.md verbatim, with the keyword it claims")
    func everyRowQuotesTheSpec() throws {
        let sections = try Conformance.specSections()
        for row in try Conformance.rows() {
            let text = try #require(sections[row.section], "row \(row.line): relay-v1.md has no §\(row.section)")
            #expect(text.contains(row.quote), "row \(row.line): the quote is not in §\(row.section): \(row.quote)")
            #expect(Conformance.keywords(in: row.quote).contains(row.keyword),
                    "row \(row.line): the quote does not say \(row.keyword)")
        }
    }

    @Test("every test a row names exists in Tests/ as an @Test function of that suite; no MUST is left without a test")
    func everyNamedTestExists() throws {
        let tests = try Conformance.testFunctions()
        #expect(tests.count > 100, "found only \(tests.count) @Test functions under Tests/")
        for row in try Conformance.rows() {
            if row.keyword.hasPrefix("MUST") {
                #expect(!row.noTest, "row \(row.line): a \(row.keyword) marked NO TEST")
            }
            #expect(row.noTest || !row.tests.isEmpty, "row \(row.line) names no test and does not say NO TEST")
            for name in row.tests {
                #expect(tests.contains(name), "row \(row.line) names \(name), which is no @Test function in Tests/")
            }
        }
    }

    @Test("every `Suite/function` quoted anywhere in conformance.md is an @Test function in Tests/")
    func everyQuotedTestNameExists() throws {
        let tests = try Conformance.testFunctions()
        let text = try Conformance.read("Protocol/conformance.md")
        let named = text.matches(of: Conformance.testNamePattern).map { String($0.output.1) }
        #expect(named.count >= 20, "conformance.md names only \(named.count) tests")
        for name in named {
            #expect(tests.contains(name), "conformance.md names \(name), which is no @Test function in Tests/")
        }
    }
}

/// Reading relay-v1.md and conformance.md. Text is compared after joining
/// lines and collapsing whitespace, so line wrapping never matters.
enum Conformance {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Requirement {
        var section: String
        var keyword: String
        /// Where the keyword stands in the section's normalised text.
        var offset: Int
        var context: String
    }

    struct Row {
        var line: Int
        var section: String
        var keyword: String
        var quote: String
        var tests: [String]
        var noTest: Bool
        /// The section's normalised text, to find where the quote stands.
        var sectionText: String

        /// The row quotes the sentence that holds this keyword occurrence.
        func covers(_ requirement: Requirement) -> Bool {
            guard requirement.section == section, requirement.keyword == keyword else { return false }
            var from = sectionText.startIndex
            while let range = sectionText.range(of: quote, range: from..<sectionText.endIndex) {
                let start = sectionText.distance(from: sectionText.startIndex, to: range.lowerBound)
                let end = sectionText.distance(from: sectionText.startIndex, to: range.upperBound)
                if start <= requirement.offset && requirement.offset < end { return true }
                from = sectionText.index(after: range.lowerBound)
            }
            return false
        }
    }

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    static func normalise(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
    }

    /// relay-v1.md by numbered section ("2", "4.3"): each `##`/`###` heading
    /// that starts with a number opens one; an unnumbered one (`### Frame
    /// types`) stays in its parent. The text before §1 (which defines the key
    /// words) is not a section.
    static func specSections() throws -> [String: String] {
        var sections: [String: [String]] = [:]
        var current: String?
        for line in try read("Protocol/relay-v1.md").split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") {
                let title = line.drop { $0 == "#" }.drop { $0 == " " }
                let number = title.prefix { $0.isNumber || $0 == "." }
                if !number.isEmpty {
                    let section = number.hasSuffix(".") ? String(number.dropLast()) : String(number)
                    current = section
                }
                continue
            }
            if let current { sections[current, default: []].append(String(line)) }
        }
        return sections.mapValues { normalise($0.joined(separator: "\n")) }
    }

    static var keywordPattern: Regex<Substring> { #/\b(?:MUST NOT|MUST|SHOULD NOT|SHOULD)\b/# }

    /// A test name in code quotes: `Suite/function`.
    static var testNamePattern: Regex<(Substring, Substring)> { #/`([A-Za-z0-9_]+/[A-Za-z0-9_]+)`/# }

    static func keywords(in text: String) -> [String] {
        text.matches(of: keywordPattern).map { String(text[$0.range]) }
    }

    static func specRequirements() throws -> [Requirement] {
        var out: [Requirement] = []
        for (section, text) in try specSections() {
            for match in text.matches(of: keywordPattern) {
                let offset = text.distance(from: text.startIndex, to: match.range.lowerBound)
                let lower = text.index(match.range.lowerBound, offsetBy: -40, limitedBy: text.startIndex) ?? text.startIndex
                let upper = text.index(match.range.upperBound, offsetBy: 40, limitedBy: text.endIndex) ?? text.endIndex
                out.append(Requirement(section: section, keyword: String(text[match.range]), offset: offset,
                                       context: String(text[lower..<upper])))
            }
        }
        return out
    }

    /// The rows of conformance.md's requirement tables: `| §N | KEYWORD | "quote" | tests |`.
    static func rows() throws -> [Row] {
        let sections = try specSections()
        var out: [Row] = []
        for (index, line) in try read("Protocol/conformance.md").split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            // A requirement row: four cells, the first a section number ("§4.3"), not the header's "§".
            guard cells.count >= 6, cells[1].hasPrefix("§"), cells[1].dropFirst().first?.isNumber == true else { continue }
            let section = String(cells[1].dropFirst())
            var quote = cells[3]
            if quote.hasPrefix("\""), quote.hasSuffix("\""), quote.count >= 2 { quote = String(quote.dropFirst().dropLast()) }
            let testsCell = cells[4]
            let tests = testsCell.matches(of: testNamePattern).map { String($0.output.1) }
            out.append(Row(line: index + 1, section: section, keyword: cells[2], quote: normalise(quote), tests: tests,
                           noTest: testsCell.contains("NO TEST"), sectionText: sections[section] ?? ""))
        }
        return out
    }

    /// "Suite/function" for every `@Test` function under Tests/, the suite
    /// being the top-level type (or extension) the function is declared in.
    static func testFunctions() throws -> Set<String> {
        let tests = root.appendingPathComponent("Tests")
        guard let files = FileManager.default.enumerator(at: tests, includingPropertiesForKeys: nil) else { return [] }
        let typePattern = #/^(?:@[A-Za-z]+(?:\(.*\))? )*(?:(?:public|private|fileprivate|internal|final) )*(?:struct|class|enum|extension|actor) ([A-Za-z0-9_]+)/#
        let funcPattern = #/func ([A-Za-z0-9_]+)\(/#
        var out = Set<String>()
        for case let file as URL in files where file.pathExtension == "swift" {
            var suite: String?
            var sawTestAttribute = false
            for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
                if let match = line.firstMatch(of: typePattern) {
                    suite = String(match.output.1)  // only top-level declarations start at column 0
                }
                let trimmed = line.drop { $0 == " " }
                if trimmed.hasPrefix("@Test") { sawTestAttribute = true }
                if sawTestAttribute, let match = line.firstMatch(of: funcPattern) {
                    if let suite { out.insert("\(suite)/\(match.output.1)") }
                    sawTestAttribute = false
                }
            }
        }
        return out
    }
}
