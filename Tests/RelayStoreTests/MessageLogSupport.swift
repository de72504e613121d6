import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import Testing

/// The two ``MessageLog`` implementations; the contract tests run on each.
enum LogKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case lmdb, memory
    var testDescription: String { rawValue }
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

    func commitCursorAndWait(owner: DurableOwner, name: String, sequence: UInt64) async throws {
        let result: Result<Void, StoreError> = await withCheckedContinuation { continuation in
            commitCursor(owner: owner, name: name, sequence: sequence) { continuation.resume(returning: $0) }
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
