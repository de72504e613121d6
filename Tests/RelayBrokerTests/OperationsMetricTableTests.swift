import Foundation
@testable import RelayBroker
import Testing

/// docs/operations.md's metric table is what an operator writes alerts
/// from: every family relayd gives a HELP text must be listed there.
@Suite("docs/operations.md lists every metric family")
struct OperationsMetricTableTests {
    @Test("each family in MetricHelp appears in docs/operations.md as `name`")
    func everyFamilyDocumented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        #expect(MetricHelp.text.count >= 25, "only \(MetricHelp.text.count) families with help")
        let missing = MetricHelp.text.keys.filter { !doc.contains("`\($0)`") }.sorted()
        #expect(missing.isEmpty, "exported but not in docs/operations.md: \(missing)")
    }
}
