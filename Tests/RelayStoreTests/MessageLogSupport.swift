import Foundation
import NIOCore
import RelayCore
import RelayJetStream
@testable import RelayStore
import RelayTestSupport
import Testing

/// The three ``MessageLog`` implementations; the contract tests run on each.
/// `jetstream` runs against a real nats-server (JetStream, mutual TLS)
/// started for the test, and fails when nats-server is missing.
enum LogKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case lmdb, memory, jetstream
    var testDescription: String { rawValue }

    /// The logs on this machine alone: the tests of LMDB's bounds (`last N`
    /// examines at most maxStartScan; the dedup window counts entries) run on
    /// these. JetStream's `last N` is exact and its duplicate window is by
    /// time only (docs/cluster.md, "What differs from LMDB").
    static let local: [LogKind] = [.lmdb, .memory]
}

/// Opens a fresh log of `kind` with `configure`d limits (the LMDB one in a
/// temporary directory), runs `body`, closes it.
func withLog<R>(_ kind: LogKind, _ configure: (inout StoreConfiguration) throws -> Void = { _ in },
                _ body: (any MessageLog) async throws -> R) async throws -> R {
    switch kind {
    case .lmdb:
        return try await withStore(configure) { store, _ in try await body(store) }
    case .memory:
        var configuration = StoreConfiguration(directory: "/nonexistent/in-memory")
        try configure(&configuration)
        let log = InMemoryMessageLog(configuration: configuration)
        defer { log.close() }
        return try await body(log)
    case .jetstream:
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20  // within a test machine's JetStream storage
        configuration.pruneInterval = .seconds(3600)  // tests prune explicitly, as withStore's do
        try configure(&configuration)
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let log = try JetStreamMessageLog.open(configuration, settings: server.jetStreamSettings(replicas: 1))
        defer { log.close() }
        return try await body(log)
    }
}

/// Runs `body` with a way to open the log of `kind` on the same data again,
/// as relayd does after a restart: LMDB reopens the directory, JetStream
/// connects to the same server and stream. The in-memory log keeps nothing
/// across a process, so "again" is the same log. `body` closes each log it
/// opens (the in-memory one is closed here).
func withReopenableLog<R>(_ kind: LogKind, _ body: (_ open: () throws -> any MessageLog) async throws -> R) async throws -> R {
    switch kind {
    case .lmdb:
        let directory = try TemporaryDirectory(prefix: "relay-store")
        defer { directory.remove() }
        var configuration = StoreConfiguration(directory: directory.path)
        configuration.initialMapSize = 1 << 20
        configuration.pruneInterval = .seconds(3600)
        return try await body { try MessageStore.open(configuration) }
    case .memory:
        let log = InMemoryMessageLog(configuration: StoreConfiguration(directory: "/nonexistent/in-memory"))
        defer { log.close() }
        return try await body { log }
    case .jetstream:
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20
        configuration.pruneInterval = .seconds(3600)
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        return try await body { try JetStreamMessageLog.open(configuration, settings: server.jetStreamSettings(replicas: 1)) }
    }
}

extension SingleNATSServer {
    /// relayd's side of the connection: `alice`'s certificate, the test CA.
    func jetStreamSettings(replicas: Int) -> JetStreamSettings {
        var settings = JetStreamSettings(endpoint: NATSEndpoint(servers: [url], caFile: pki.ca.certificate,
                                                                certificateFile: pki.alice.certificate,
                                                                privateKeyFile: pki.alice.key))
        settings.replicas = replicas
        return settings
    }
}

extension MessageLog {
    /// Appends and waits for the completion.
    func appendAndWait(_ messages: [NewMessage]) async -> [Result<AppendReceipt, StoreError>] {
        await withCheckedContinuation { continuation in
            append(messages) { continuation.resume(returning: $0) }
        }
    }

    func appendAndWait(_ message: NewMessage) async throws -> AppendReceipt {
        let results = await appendAndWait([message])
        return try #require(results.first).get()
    }

    /// Appends and requires every message to be stored; returns the sequences.
    @discardableResult
    func appendAll(_ messages: [NewMessage]) async throws -> [UInt64] {
        try await appendAndWait(messages).map { try $0.get().sequence }
    }

    /// `filter`: the subscription's, stored with the cursor (any valid filter when the test is not about it).
    func commitCursorAndWait(owner: DurableOwner, name: String, sequence: UInt64, filter: String = "c.>") async throws {
        let result: Result<Void, StoreError> = await withCheckedContinuation { continuation in
            commitCursor(owner: owner, name: name, sequence: sequence, filter: filter) { continuation.resume(returning: $0) }
        }
        try result.get()
    }

    /// Everything matching `filter` from `from` on, in batches of the given size.
    func readAll(from: UInt64 = 1, filter: String = ">", batch: Int = 1024) throws -> [StoredMessage] {
        var all: [StoredMessage] = []
        var next = from
        while true {
            let page = try read(from: next, filter: TopicFilter(filter), maxMessages: batch, maxBytes: 1 << 20, maxScan: 65_536)
            all += page.messages
            next = page.next
            if page.reachedEnd { return all }
        }
    }
}
