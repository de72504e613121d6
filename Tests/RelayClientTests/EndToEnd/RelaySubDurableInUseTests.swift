import Foundation
import NIOConcurrencyHelpers
import RelayClient
import RelayTestSupport
import Testing

/// relay-sub started with a durable name that another connection holds: the
/// client retries (the holder may be a connection the broker has not yet
/// seen die), and the user is told so at once on stderr instead of waiting
/// about 25 s in silence; once the holder goes, the retry attaches and
/// resumes from the durable's cursor.
@Suite("relay-sub with a durable attached elsewhere")
struct RelaySubDurableInUseTests {
    @Test("the second relay-sub says at once that the durable is attached to another connection, then resumes when it is free")
    func durableInUseIsReported() async throws {
        try await withBroker { broker in
            let args = broker.cliArguments() + ["--topic", "inuse.d", "--format", "raw", "--durable", "shared-worker"]
            let holder = try await ChildProcess(try ProductLocator.executable("relay-sub"), args)
            defer { holder.signal(SIGKILL) }
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            var published = try await Self.waitUntilAttached(holder, publisher: publisher)

            let second = try await ChildProcess(try ProductLocator.executable("relay-sub"), args + ["--count", "1"])
            defer { second.signal(SIGKILL) }
            // Well before the client's retries run out (about 25 s).
            let told = await eventuallyValue(timeout: 10) { () -> String? in
                second.stderrLines.first { $0.contains("shared-worker") && $0.contains("attached to another connection") }
            }
            let line = try #require(told, "relay-sub said nothing about the durable in use: \(second.transcript)")
            #expect(line.hasPrefix("relay-sub: ") && line.contains("retrying") && line.contains("another durable name"), "\(line)")
            #expect(second.isRunning, "relay-sub gave up instead of retrying: \(second.transcript)")

            // The holder dies: a retry attaches, and the second gets the
            // durable's next message (one the holder may not have acknowledged, or a new one).
            holder.signal(SIGKILL)
            let status = try await eventuallyValue(timeout: 30, every: 0.3) { () -> Int32? in
                if !second.isRunning { return second.terminationStatus }
                let text = "after-\(published.count)"
                _ = try await publisher.publish(topic: "inuse.d", text: text)
                published.append(text)
                return nil
            }
            await publisher.close()
            #expect(await second.waitForExit(timeout: 10) == 0 && status == 0, "\(second.transcript)")
            let attachedLine = second.stderrLines.first { $0.contains("durable \"shared-worker\" attached after") }
            #expect(attachedLine != nil, "relay-sub did not say the wait was over: \(second.stderrLines)")
            let got = second.stdoutLines
            #expect(got.count == 1 && got.allSatisfy(published.contains),
                    "expected one of the durable's messages: \(got)")
        }
    }

    @Test("--timeout runs out while the durable is still attached elsewhere: relay-sub exits 64 then, naming the durable, not after the retries")
    func timeoutWhileDurableInUse() async throws {
        try await withBroker { broker in
            let args = broker.cliArguments() + ["--topic", "inuse.t", "--format", "raw", "--durable", "held-worker"]
            let holder = try await ChildProcess(try ProductLocator.executable("relay-sub"), args)
            defer { holder.signal(SIGKILL) }
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            _ = try await Self.waitUntilAttached(holder, publisher: publisher, topic: "inuse.t")
            await publisher.close()

            let started = Date()
            let second = try await ChildProcess(try ProductLocator.executable("relay-sub"), args + ["--timeout", "2"])
            defer { second.signal(SIGKILL) }
            // The client's retries alone would take about 25 s.
            let status = await second.waitForExit(timeout: 15)
            let elapsed = Date().timeIntervalSince(started)
            #expect(status == 64, "exit \(String(describing: status)) after \(elapsed) s: \(second.transcript)")
            let said = second.stderrLines.first { $0.contains("\"held-worker\" was still attached to another connection") }
            #expect(said != nil, "\(second.stderrLines)")
            #expect(holder.isRunning, "the holder was disturbed: \(holder.transcript)")
        }
    }

    @Test("the library reports each durable_in_use retry to onSubscribeRetry, in order, and the subscribe returns once the holder closes")
    func libraryReportsRetries() async throws {
        try await withBroker { broker in
            let holder = try await Subscriber.connect(broker.clientConfiguration())
            // Kept until the holder closes: a dropped subscription unsubscribes.
            let held = try await holder.subscribe(filter: "inuse.lib", durable: "lib-worker")
            let retries = NIOLockedValueBox<[SubscribeRetry]>([])
            var configuration = broker.clientConfiguration()
            configuration.onSubscribeRetry = { retry in retries.withLockedValue { $0.append(retry) } }
            let second = try await Subscriber.connect(configuration)
            async let opened = second.subscribe(filter: "inuse.lib", durable: "lib-worker")
            let firstTwo = await eventuallyValue(timeout: 10) { () -> [SubscribeRetry]? in
                let seen = retries.withLockedValue { $0 }
                return seen.count >= 2 ? Array(seen.prefix(2)) : nil
            }
            let two = try #require(firstTwo, "fewer than two retries were reported")
            #expect(two.map(\.attempt) == [1, 2] && two.map(\.attempts) == [8, 8], "\(two)")
            #expect(two.map(\.retryIn) == [.milliseconds(100), .milliseconds(200)], "\(two)")
            let named = two.allSatisfy { $0.durableName == "lib-worker" && $0.filter == "inuse.lib" && $0.code == .durableInUse }
            #expect(named, "\(two)")
            await holder.connection.close()
            withExtendedLifetime(held) {}
            let subscription = try await opened
            #expect(subscription.durableName == "lib-worker")
            await second.connection.close()
        }
    }

    /// Publishes a message every 0.3 s until `holder` prints one (a new
    /// durable starts at the latest message, so only a message published
    /// after its SUB shows that it is attached); returns what was published.
    static func waitUntilAttached(_ holder: ChildProcess, publisher: Publisher, topic: String = "inuse.d") async throws -> [String] {
        var published: [String] = []
        let attached = try await eventuallyValue(timeout: 20, every: 0.3) { () -> String? in
            let text = "warm-\(published.count)"
            _ = try await publisher.publish(topic: topic, text: text)
            published.append(text)
            return holder.stdoutLines.first
        }
        #expect(attached != nil, "the holder never attached: \(holder.transcript)")
        return published
    }
}
