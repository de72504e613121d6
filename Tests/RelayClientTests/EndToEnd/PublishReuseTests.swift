import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// Wave 22 (issue #19): the client reuses its publish records (answered
/// ones go back to the connection's spares), keeps a publish without
/// headers as nil, checks the topic cache under the submission lock, and
/// has a publish variant whose answer carries a context value instead of a
/// closure per publish. None of that may change what goes on the wire or
/// what each publish's answer says: every message keeps its own topic,
/// headers and payload, every answer goes to its own publish, in order.
@Suite("Publish records reused, answers by context")
struct PublishReuseTests {
    @Test("reused records carry each message's own topic, headers and payload; each answer its own context, in order")
    func reusedRecords() async throws {
        try await withBroker { broker in
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            let answers = Answers()
            let onReceipt: PublishContextCompletion = { result, context in answers.add(context, result) }
            let total = 3000
            // Bursts of 250 with a flush between them: later bursts run on records answered before.
            for burst in 0..<(total / 250) {
                for i in (burst * 250)..<((burst + 1) * 250) {
                    let topic = i % 2 == 0 ? "reuse.even" : "reuse.odd"
                    let headers = i % 3 == 0 ? [HeaderField(key: "index", value: "\(i)"), HeaderField(key: "k", value: "")] : []
                    if i % 5 == 0 {
                        publisher.publish(topic: topic, payload: ByteBuffer(string: "m\(i)"), headers: headers) { result in
                            answers.add(UInt64(i), result)
                        }
                    } else {
                        publisher.publish(topic: topic, payload: ByteBuffer(string: "m\(i)"), headers: headers,
                                          context: UInt64(i), onReceipt: onReceipt)
                    }
                }
                try await publisher.flush()
            }
            // (No closure literal inside #expect within this closure: docs/testing.md, "A toolchain trap".)
            let all = answers.all
            #expect(all.count == total)
            let contexts = all.map(\.0).sorted()
            #expect(contexts == Array(0..<UInt64(total)))
            let receipts = all.sorted { $0.0 < $1.0 }.compactMap { try? $0.1.get() }
            #expect(receipts.count == total)
            // Publish ids and log sequences follow the order of the publishes.
            let inOrder = zip(receipts, receipts.dropFirst()).allSatisfy { $0.publishID < $1.publishID && $0.sequence < $1.sequence }
            #expect(inOrder)
            let subscriber = try await Subscriber.connect(broker.clientConfiguration())
            let messages = try await take(total, from: try await subscriber.subscribe(filter: "reuse.*", from: .earliest))
            #expect(messages.map(\.sequence) == receipts.map(\.sequence))
            for (i, message) in messages.enumerated() {
                #expect(message.topic == (i % 2 == 0 ? "reuse.even" : "reuse.odd"))
                #expect(message.text == "m\(i)")
                #expect(message.headers == (i % 3 == 0 ? [HeaderField(key: "index", value: "\(i)"), HeaderField(key: "k", value: "")] : []))
            }
            await publisher.close()
            await subscriber.connection.close()
        }
    }

    @Test("refusals before sending reach the context handler; the topic's error wins over the headers'")
    func refusalsWithContext() async throws {
        try await withBroker { broker in
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            let answers = Answers()
            let onReceipt: PublishContextCompletion = { result, context in answers.add(context, result) }
            let badKey = [HeaderField(key: "", value: "x")]
            publisher.publish(topic: "ok.topic", payload: ByteBuffer(string: "a"), headers: badKey, context: 1, onReceipt: onReceipt)
            publisher.publish(topic: "bad..topic", payload: ByteBuffer(string: "b"), headers: badKey, context: 2, onReceipt: onReceipt)
            publisher.publish(topic: "_reserved.x", payload: ByteBuffer(string: "c"), context: 3, onReceipt: onReceipt)
            publisher.publish(topic: "ok.topic", payload: ByteBuffer(string: "d"), context: 4, onReceipt: onReceipt)
            try await publisher.flush()
            let byContext = Dictionary(answers.all.map { ($0.0, $0.1) }, uniquingKeysWith: { first, _ in first })
            #expect(byContext.count == 4)
            func usageMessage(_ context: UInt64) -> String? {
                guard case .failure(let error) = byContext[context], error.category == .usage else { return nil }
                return error.message
            }
            let second = usageMessage(2) ?? ""
            #expect(usageMessage(1)?.contains("header key") == true)
            #expect(second.contains("bad..topic") && !second.contains("header key"))
            #expect(usageMessage(3)?.contains("reserved") == true)
            if case .success(let receipt) = byContext[4] { #expect(receipt.sequence >= 1) } else { Issue.record("publish 4 failed") }
            await publisher.close()
        }
    }
}

/// Answers by context, from the event loop.
final class Answers: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(UInt64, Result<PublishReceipt, RelayClientError>)] = []
    func add(_ context: UInt64, _ result: Result<PublishReceipt, RelayClientError>) {
        lock.lock()
        items.append((context, result))
        lock.unlock()
    }
    var all: [(UInt64, Result<PublishReceipt, RelayClientError>)] { lock.lock(); defer { lock.unlock() }; return items }
}
