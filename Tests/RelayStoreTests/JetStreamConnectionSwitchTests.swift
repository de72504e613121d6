import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RelayCore
import RelayJetStream
@testable import RelayStore
import RelayTestSupport
import Testing

/// The JetStream log's switch to a new NATS connection (a renewed client
/// certificate, issue #20: JetStreamMessageLog+Renewal.swift), with appends
/// in flight and the live tail open: every append completes after its own
/// JetStream ack, sequences keep the append order across the switch, nothing
/// is stored twice, and the tail, moved to the new connection, delivers each
/// message once, in order.
@Suite("JetStream connection switch", .serialized)
struct JetStreamConnectionSwitchTests {
    @Test("switching connections with 10 appends of 50 records in flight and 10 after: 1000 acked in append order, stored once, the tail delivers each once in order")
    func switchWithAppendsInFlight() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20
        configuration.pruneInterval = .seconds(3600)
        let log = try JetStreamMessageLog.open(configuration, settings: server.jetStreamSettings(replicas: 1))
        defer { log.close() }
        let delivered = NIOLockedValueBox<[UInt64]>([])
        try log.startTail(after: 0) { messages in delivered.withLockedValue { $0 += messages.map(\.sequence) } }

        let endpoint = server.jetStreamSettings(replicas: 1).endpoint
        let switchOver = try log.connectWithRenewedCredentials(CredentialFiles(
            ca: endpoint.caFile, certificate: endpoint.certificateFile, privateKey: endpoint.privateKeyFile))
        let receipts = NIOLockedValueBox<[Int: [UInt64]]>([:])
        let done = DispatchGroup()
        func append(_ batch: Int) throws {
            let messages = try (0..<50).map { i in
                try message("switch.\(i % 4)", "b\(batch)m\(i)",
                            producerKey: ProducerKey(publisher: testDigest, sessionHigh: 7, sessionLow: 7, publishID: UInt64(batch * 50 + i)))
            }
            done.enter()
            log.append(messages) { results in
                receipts.withLockedValue { $0[batch] = results.compactMap { try? $0.get().sequence } }
                done.leave()
            }
        }
        for batch in 0..<10 { try append(batch) }
        // The writer runs the switch after the appends queued above have been sent, while their acks are awaited.
        switchOver()
        for batch in 10..<20 { try append(batch) }
        let finished = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: done.wait(timeout: .now() + 30) == .success) }
        }
        #expect(finished, "appends did not complete")
        let sequences = (0..<20).flatMap { receipts.withLockedValue { $0 }[$0] ?? [] }
        #expect(sequences == Array(1...1000), "sequences not in append order across the switch: \(sequences.prefix(20))...")
        // The publishes after the switch went out on a new connection (its own pipeline counts them).
        #expect(log.publishStatistics.publishes == 500, "publishes counted on the current connection: \(log.publishStatistics.publishes)")
        #expect(try log.readAll().map(\.text) == (0..<20).flatMap { b in (0..<50).map { "b\(b)m\($0)" } })
        let all = await eventually(timeout: 10) { delivered.withLockedValue { $0.count } >= 1000 }
        #expect(all, "the tail delivered \(delivered.withLockedValue { $0.count }) of 1000")
        #expect(delivered.withLockedValue { $0 } == Array(1...1000), "the tail across the switch: \(delivered.withLockedValue { $0 }.count) messages")

        // Still one tail, on the new connection: what is appended now arrives once.
        _ = try await log.appendAll([try message("switch.after", "after")])
        let last = await eventually(timeout: 5) { delivered.withLockedValue { $0.last } == 1001 }
        #expect(last && delivered.withLockedValue { $0.count } == 1001)
    }
}
