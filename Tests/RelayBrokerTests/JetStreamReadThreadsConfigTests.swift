import Testing
@testable import RelayBroker

/// `[storage.jetstream] read_threads`: the threads that make a SUB's
/// look-ups and replay reads off the event loops (docs/configuration.md).
@Suite("JetStream read_threads config")
struct JetStreamReadThreadsConfigTests {
    @Test("read_threads defaults to 16; 1 and 256 are taken as written")
    func accepted() throws {
        #expect(try JetStreamConfigFixture.parse().storage.jetstream?.readThreads == 16)
        for value in [1, 256] {
            let config = try JetStreamConfigFixture.parse(jetstream: "read_threads = \(value)")
            #expect(config.storage.jetstream?.readThreads == value, "read_threads = \(value)")
        }
    }

    @Test("a read_threads of 0, over 256, negative or not an integer is refused, naming the key and the range")
    func refused() throws {
        for value in ["0", "257", "-4", "\"16\"", "true"] {
            do {
                let config = try JetStreamConfigFixture.parse(jetstream: "read_threads = \(value)")
                Issue.record("accepted read_threads = \(value): \(String(describing: config.storage.jetstream?.readThreads))")
            } catch let error as ConfigError {
                #expect(error.key == "storage.jetstream.read_threads", "\(error)")
                if value.first != "\"" && value != "true" {
                    #expect(error.message.contains("1 to 256"), "\(error)")
                }
            }
        }
    }
}
