import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import RelayWire
import Synchronization
import Testing

/// The dedup identity of `testPublisher`: 32 bytes of 0x0F.
let testDigest = CertificateFingerprint(w0: 0x0F0F_0F0F_0F0F_0F0F, w1: 0x0F0F_0F0F_0F0F_0F0F,
                                        w2: 0x0F0F_0F0F_0F0F_0F0F, w3: 0x0F0F_0F0F_0F0F_0F0F)
let testPublisher = PublisherStamp(principal: "spiffe://example.org/orders", fingerprint: testDigest)

/// A durable owner made of one repeated byte.
func testOwner(_ byte: UInt8) -> DurableOwner {
    guard let owner = DurableOwner(digest: [UInt8](repeating: byte, count: 32)) else {
        preconditionFailure("32 bytes is a valid owner digest")
    }
    return owner
}

/// A header block as relayd hands it to the store: the PUB's encoding.
func headerBlock(_ fields: [(String, String)]) throws -> HeaderBlock {
    let headers = try Headers(fields.map { HeaderField(key: $0.0, value: $0.1) })
    return HeaderBlock(count: headers.count, encoded: headers.encoded)
}

func message(_ topic: String, _ text: String, headers: HeaderBlock = .empty,
             publisher: PublisherStamp = testPublisher, producerKey: ProducerKey? = nil) throws -> NewMessage {
    NewMessage(topic: try Topic(topic), payload: ByteBuffer(string: text), headers: headers,
               publisher: publisher, producerKey: producerKey)
}

extension StoredMessage {
    var text: String { String(buffer: payload) }
}

/// Opens a store in a fresh temporary directory and closes/removes it after `body`.
func withStore<R>(_ configure: (inout StoreConfiguration) throws -> Void = { _ in },
                  _ body: (MessageStore, TemporaryDirectory) async throws -> R) async throws -> R {
    let directory = try TemporaryDirectory(prefix: "relay-store")
    defer { directory.remove() }
    var configuration = StoreConfiguration(directory: directory.path)
    configuration.initialMapSize = 1 << 20
    // Tests prune explicitly and count what was deleted; a background pass
    // racing them would change the count. Tests of the pruner set it back.
    configuration.pruneInterval = .seconds(3600)
    try configure(&configuration)
    let store = try MessageStore.open(configuration)
    defer { store.close() }
    return try await body(store, directory)
}

/// Appends and requires every message to succeed; returns the sequences.
@discardableResult
func appendAll(_ store: MessageStore, _ messages: [NewMessage]) async throws -> [UInt64] {
    try await store.append(messages).map { try $0.get().sequence }
}

/// A wall clock a test moves by hand (``StoreConfiguration/wallClock``):
/// ages come from ``advance(by:)``, not from sleeping, so a stalled machine
/// cannot make a message older than the test says.
final class ManualWallClock: Sendable {
    private let now = Mutex<UInt64>(1_800_000_000 * 1_000_000_000)

    var clock: WallClock { WallClock { [self] in now.withLock { $0 } } }

    func advance(by duration: Duration) {
        let (seconds, attoseconds) = duration.components
        now.withLock { $0 += UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000) }
    }
}
