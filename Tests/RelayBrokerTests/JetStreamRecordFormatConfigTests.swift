import Foundation
import RelayTestSupport
import Testing
@testable import RelayBroker

/// `[storage.jetstream] record_format` (docs/cluster.md, "Record formats and
/// rolling upgrades"): "v2" by default, "v1" while older edges still run,
/// anything else refused at load.
@Suite("JetStream record_format config")
struct JetStreamRecordFormatConfigTests {
    func parse(_ line: String) throws -> BrokerConfiguration {
        try JetStreamConfigFixture.parse(jetstream: line)
    }

    @Test("record_format defaults to v2, takes v1, and refuses anything else naming both values")
    func recordFormat() throws {
        #expect(try parse("").storage.jetstream?.recordFormat == "v2")
        #expect(try parse("record_format = \"v1\"").storage.jetstream?.recordFormat == "v1")
        do {
            let config = try parse("record_format = \"v3\"")
            Issue.record("accepted record_format v3: \(String(describing: config.storage.jetstream))")
        } catch let error as ConfigError {
            #expect(error.key == "storage.jetstream.record_format", "\(error)")
            #expect(error.message.contains("\"v1\"") && error.message.contains("\"v2\""), "\(error)")
        }
    }
}
