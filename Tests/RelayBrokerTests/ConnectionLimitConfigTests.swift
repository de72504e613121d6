import Foundation
import Testing
import RelayTestSupport
@testable import RelayBroker

/// The connection-limit keys of issue 14 (items 3, 7, 9): defaults, parsing, refusals.
@Suite("Broker configuration: connection limits")
struct ConnectionLimitConfigTests {
    let base = ConfigTests()

    @Test("defaults: write_stall_timeout 30s, max_preauth_connections 1024, max_preauth_per_address 128, metrics max_connections 64, request_timeout 5s")
    func defaults() throws {
        let dir = try base.folder()
        defer { dir.remove() }
        let config = try base.parse(base.minimalTLS, in: dir)
        #expect(config.limits.writeStallTimeoutNanos == 30_000_000_000)
        #expect(config.limits.maxPreAuthConnections == 1_024)
        #expect(config.limits.maxPreAuthPerAddress == 128)
        #expect(config.metrics.maxConnections == 64)
        #expect(config.metrics.requestTimeoutNanos == 5_000_000_000)
    }

    @Test("the keys are read from [limits] and [metrics]")
    func parsed() throws {
        let dir = try base.folder()
        defer { dir.remove() }
        let config = try base.parse(base.minimalTLS + """

            [limits]
            write_stall_timeout = "750ms"
            max_preauth_connections = 10
            max_preauth_per_address = 2
            [metrics]
            max_connections = 3
            request_timeout = "2s"
            """, in: dir)
        #expect(config.limits.writeStallTimeoutNanos == 750_000_000)
        #expect(config.limits.maxPreAuthConnections == 10)
        #expect(config.limits.maxPreAuthPerAddress == 2)
        #expect(config.metrics.maxConnections == 3)
        #expect(config.metrics.requestTimeoutNanos == 2_000_000_000)
    }

    @Test("zero and out-of-range values are refused with the key named")
    func refused() throws {
        let dir = try base.folder()
        defer { dir.remove() }
        base.expectError(base.minimalTLS + "\n[limits]\nwrite_stall_timeout = \"0s\"", in: dir,
                         key: "limits.write_stall_timeout", contains: "more than 0")
        base.expectError(base.minimalTLS + "\n[limits]\nmax_preauth_connections = 0", in: dir,
                         key: "limits.max_preauth_connections", contains: "out of range")
        base.expectError(base.minimalTLS + "\n[limits]\nmax_preauth_per_address = 0", in: dir,
                         key: "limits.max_preauth_per_address", contains: "out of range")
        base.expectError(base.minimalTLS + "\n[metrics]\nmax_connections = 0", in: dir,
                         key: "metrics.max_connections", contains: "out of range")
        base.expectError(base.minimalTLS + "\n[metrics]\nrequest_timeout = \"0s\"", in: dir,
                         key: "metrics.request_timeout", contains: "more than 0")
    }
}
