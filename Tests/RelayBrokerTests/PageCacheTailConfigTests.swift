import Testing
@testable import RelayBroker

/// `[storage] page_cache_tail`: off by default (every page stays cached, which
/// replay and lagging subscribers need), parsed as a size, bounded, and
/// handed to the store.
@Suite("Broker configuration: page_cache_tail")
struct PageCacheTailConfigTests {
    let config = ConfigTests()

    @Test("off by default; a configured size reaches the store's configuration")
    func mapsToTheStore() throws {
        let dir = try config.folder()
        defer { dir.remove() }
        let defaults = try config.parse(config.minimalTLS, in: dir)
        #expect(defaults.storage.pageCacheTail == nil)
        #expect(defaults.storeConfiguration.pageCacheTail == nil)
        let configured = try config.parse("\(config.minimalTLS)\n[storage]\npage_cache_tail = \"256MiB\"", in: dir)
        #expect(configured.storage.pageCacheTail == 256 << 20)
        #expect(configured.storeConfiguration.pageCacheTail == 256 << 20)
    }

    @Test("a tail under 1 MiB, or not a size, is refused with the key named")
    func refusesBadValues() throws {
        let dir = try config.folder()
        defer { dir.remove() }
        config.expectError("\(config.minimalTLS)\n[storage]\npage_cache_tail = \"64KiB\"", in: dir,
                           key: "storage.page_cache_tail", contains: "at least 1MiB")
        config.expectError("\(config.minimalTLS)\n[storage]\npage_cache_tail = \"lots\"", in: dir,
                           key: "storage.page_cache_tail", contains: "size")
    }
}
