import Testing
@testable import RelayBroker

/// `[storage] dedup_window`: parsed, bounded, and handed to the store.
@Suite("Broker configuration: dedup_window")
struct DedupWindowConfigTests {
    let config = ConfigTests()

    @Test("the default is 120 s and a configured value reaches the store's configuration")
    func mapsToTheStore() throws {
        let dir = try config.folder()
        defer { dir.remove() }
        let defaults = try config.parse(config.minimalTLS, in: dir)
        #expect(defaults.storeConfiguration.dedup.maxAge == .seconds(120))
        let configured = try config.parse("\(config.minimalTLS)\n[storage]\ndedup_window = \"45s\"", in: dir)
        #expect(configured.storage.dedupWindowNanos == 45_000_000_000)
        #expect(configured.storeConfiguration.dedup.maxAge == .seconds(45))
    }

    @Test("a window under one second, or not a duration, is refused with the key named")
    func refusesBadValues() throws {
        let dir = try config.folder()
        defer { dir.remove() }
        config.expectError("\(config.minimalTLS)\n[storage]\ndedup_window = \"500ms\"", in: dir,
                           key: "storage.dedup_window", contains: "at least 1s")
        config.expectError("\(config.minimalTLS)\n[storage]\ndedup_window = \"soon\"", in: dir,
                           key: "storage.dedup_window", contains: "duration")
    }
}
