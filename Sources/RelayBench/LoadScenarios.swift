import Foundation
import RelayClient

/// Where the bench connects and what it knows about the broker.
public struct BenchTarget: Sendable {
    public var configuration: RelayClientConfiguration
    /// The broker's pid, for CPU and RSS figures (known when the bench started it, or from --broker-pid).
    public var brokerPID: Int32?
    /// The broker's storage durability, as reported in the results ("fsync", "async" or "unknown").
    public var durability: String

    public init(configuration: RelayClientConfiguration, brokerPID: Int32?, durability: String) {
        var configuration = configuration
        // A lost connection must fail the run, not be papered over by a reconnect.
        configuration.reconnect = .never
        configuration.clientName = "relayctl-bench"
        self.configuration = configuration
        self.brokerPID = brokerPID
        self.durability = durability
    }
}

/// The shape of a message-moving scenario.
public struct LoadParameters: Sendable {
    public var publishers: Int
    public var subscribers: Int
    /// Messages per publisher.
    public var count: Int
    public var size: Int
    public var window: Int
    /// Seconds before the run is cut short and reported as timed out.
    public var timeout: Double
    /// Offered load per publisher in messages/s (open loop); 0: closed loop, as fast as the window allows.
    public var rate: Double

    public init(publishers: Int, subscribers: Int, count: Int, size: Int, window: Int, timeout: Double, rate: Double = 0) {
        self.publishers = publishers
        self.subscribers = subscribers
        self.count = count
        self.size = size
        self.window = window
        self.timeout = timeout
        self.rate = rate
    }
}

/// pubsub, fanout, fanin and replay.
public enum LoadScenarios {
    /// P publishers and S subscribers on one topic; every subscriber must get
    /// every acknowledged message of every publisher, once, in each publisher's order.
    public static func pubsub(name: String, _ load: LoadParameters, target: BenchTarget) async -> BenchResult {
        var result = start(name, load, target)
        let topic = uniqueTopic(name)
        let perSubscriber = load.publishers * load.count
        var subscribers: [(Subscriber, SubscriberProbe)] = []
        var publishers: [Publisher] = []
        do {
            for _ in 0..<load.subscribers {
                let subscriber = try await Subscriber.connect(target.configuration)
                let probe = SubscriberProbe(publishers: load.publishers, perPublisher: load.count, expected: perSubscriber)
                subscribers.append((subscriber, probe))
                _ = try await subscriber.subscribe(filter: topic, from: .latest, window: UInt32(clamping: load.window),
                                                   onMessage: { probe.receive($0) }, onEnd: { probe.ended($0) })
            }
            for _ in 0..<load.publishers { publishers.append(try await Publisher.connect(target.configuration)) }
        } catch {
            result.errors.append("cannot set up: \(error)")
            await closeAll(subscribers.map(\.0.connection) + publishers.map(\.connection))
            return result
        }
        let cpu0 = target.brokerPID.flatMap(ProcessStats.cpuSeconds)
        let client0 = ProcessStats.selfCPUSeconds()
        let drivers = publishers.enumerated().map { index, publisher in
            PublishDriver(publisher: publisher, id: UInt32(index), topic: topic, count: load.count, window: load.window, size: load.size,
                          rate: load.rate)
        }
        let probes = subscribers.map(\.1)
        let timer = deadline(seconds: load.timeout) {
            drivers.forEach { $0.stop() }
            probes.forEach { $0.stop() }
        }
        let outcomes = await runAll(drivers)
        let acked = outcomes.reduce(0) { $0 + $1.acked }
        probes.forEach { $0.setExpected(acked) }
        var deliveries: [DeliveryOutcome] = []
        for probe in probes { deliveries.append(await probe.wait()) }
        timer.cancel()
        let cpu1 = target.brokerPID.flatMap(ProcessStats.cpuSeconds)
        result.clientCpuS = ProcessStats.selfCPUSeconds() - client0
        // A short grace so late duplicates still count against the run.
        try? await Task.sleep(nanoseconds: 200_000_000)
        let checked = probes.map { $0.snapshot() }
        await closeAll(subscribers.map(\.0.connection) + publishers.map(\.connection))
        result.brokerCpuS = cpuDelta(cpu0, cpu1)
        fill(&result, outcomes: outcomes, deliveries: deliveries, checked: checked, expectedPerSubscriber: acked)
        return result
    }

    /// Fills the store with `count` messages, then one subscriber reads them
    /// back from the earliest message; the rate is the replay's.
    public static func replay(_ load: LoadParameters, target: BenchTarget) async -> BenchResult {
        var result = start("replay", load, target)
        result.subscribers = 1
        let topic = uniqueTopic("replay")
        let publisher: Publisher
        do {
            publisher = try await Publisher.connect(target.configuration)
        } catch {
            result.errors.append("cannot connect the publisher: \(error)")
            return result
        }
        let driver = PublishDriver(publisher: publisher, id: 0, topic: topic, count: load.count, window: load.window, size: load.size)
        let fillTimer = deadline(seconds: load.timeout) { driver.stop() }
        let filled = await driver.run()
        fillTimer.cancel()
        await publisher.close()
        let probe = SubscriberProbe(publishers: 1, perPublisher: load.count, expected: filled.acked)
        let subscriber: Subscriber
        let cpu0 = target.brokerPID.flatMap(ProcessStats.cpuSeconds)
        let client0 = ProcessStats.selfCPUSeconds()
        let began = BenchClock.now()
        do {
            subscriber = try await Subscriber.connect(target.configuration)
            _ = try await subscriber.subscribe(filter: topic, from: .earliest, window: UInt32(clamping: load.window),
                                               onMessage: { probe.receive($0) }, onEnd: { probe.ended($0) })
        } catch {
            result.errors.append("cannot subscribe for the replay: \(error)")
            return result
        }
        let timer = deadline(seconds: load.timeout) { probe.stop() }
        let delivered = await probe.wait()
        timer.cancel()
        let cpu1 = target.brokerPID.flatMap(ProcessStats.cpuSeconds)
        result.clientCpuS = ProcessStats.selfCPUSeconds() - client0
        try? await Task.sleep(nanoseconds: 200_000_000)
        let checked = probe.snapshot()
        await subscriber.connection.close()
        result.brokerCpuS = cpuDelta(cpu0, cpu1)
        fill(&result, outcomes: [filled], deliveries: [delivered], checked: [checked], expectedPerSubscriber: filled.acked)
        // The replay's own rate: from the SUBSCRIBE to the last delivery.
        let seconds = Double(delivered.lastDelivery &- began) / 1e9
        result.deliveredMsgsPerSec = seconds > 0 && delivered.lastDelivery > began ? Double(checked.checker.distinct) / seconds : 0
        result.mbPerSec = result.deliveredMsgsPerSec * Double(load.size) / 1e6
        // Send-to-delivery time is the message's age here, not a latency.
        result.e2eP50Us = 0
        result.e2eP99Us = 0
        return result
    }

    static func start(_ name: String, _ load: LoadParameters, _ target: BenchTarget) -> BenchResult {
        var result = BenchResult(scenario: name, durability: target.durability)
        result.size = load.size
        result.publishers = load.publishers
        result.subscribers = load.subscribers
        result.window = load.window
        result.count = load.count
        if load.rate > 0 { result.offeredMsgsPerSec = load.rate * Double(load.publishers) }
        return result
    }

    static func uniqueTopic(_ name: String) -> String {
        "bench.\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    }

    static func runAll(_ drivers: [PublishDriver]) async -> [PublishOutcome] {
        await withTaskGroup(of: PublishOutcome.self) { group in
            for driver in drivers { group.addTask { await driver.run() } }
            var outcomes: [PublishOutcome] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.publisher < $1.publisher }
        }
    }

    static func closeAll(_ connections: [RelayConnection]) async {
        await withTaskGroup(of: Void.self) { group in
            for connection in connections { group.addTask { await connection.close() } }
        }
    }

    /// Rates, latencies and the correctness counts.
    static func fill(_ result: inout BenchResult, outcomes: [PublishOutcome], deliveries: [DeliveryOutcome],
                     checked: [DeliveryOutcome], expectedPerSubscriber: Int) {
        result.published = outcomes.reduce(0) { $0 + $1.sent }
        result.acked = outcomes.reduce(0) { $0 + $1.acked }
        result.failedPublishes = outcomes.reduce(0) { $0 + $1.failed }
        result.timedOut = outcomes.contains { $0.timedOut } || deliveries.contains { $0.timedOut }
        for outcome in outcomes {
            if let error = outcome.firstError { result.errors.append("publisher \(outcome.publisher): \(error)") }
        }
        for (index, delivery) in deliveries.enumerated() {
            if let error = delivery.endError { result.errors.append("subscriber \(index): \(error)") }
        }
        let firstSend = outcomes.filter { $0.firstSend > 0 }.map(\.firstSend).min() ?? 0
        let lastAck = outcomes.map(\.lastAck).max() ?? 0
        if lastAck > firstSend, firstSend > 0 {
            result.publishedMsgsPerSec = Double(result.acked) / (Double(lastAck - firstSend) / 1e9)
            result.elapsedS = Double(lastAck - firstSend) / 1e9
        }
        var ack = LatencyRecorder()
        outcomes.forEach { ack.add($0.ackLatency) }
        result.publishAckP50Us = ack.microseconds(atPercentile: 50)
        result.publishAckP99Us = ack.microseconds(atPercentile: 99)
        result.publishAckP999Us = ack.microseconds(atPercentile: 99.9)
        var e2e = LatencyRecorder()
        deliveries.forEach { e2e.add($0.e2eLatency) }
        result.e2eP50Us = e2e.microseconds(atPercentile: 50)
        result.e2eP99Us = e2e.microseconds(atPercentile: 99)
        result.expectedDeliveries = expectedPerSubscriber * checked.count
        result.delivered = checked.reduce(0) { $0 + $1.checker.distinct }
        result.lost = checked.reduce(0) { $0 + $1.checker.lost(expected: expectedPerSubscriber) }
        result.duplicated = checked.reduce(0) { $0 + $1.checker.duplicated }
        result.outOfOrder = checked.reduce(0) { $0 + $1.checker.outOfOrder + $1.sequenceRegressions }
        result.corrupt = checked.reduce(0) { $0 + $1.checker.corrupt }
        let lastDelivery = deliveries.map(\.lastDelivery).max() ?? 0
        if lastDelivery > firstSend, firstSend > 0 {
            let delivered = deliveries.reduce(0) { $0 + $1.checker.distinct }
            result.deliveredMsgsPerSec = Double(delivered) / (Double(lastDelivery - firstSend) / 1e9)
            result.elapsedS = max(result.elapsedS, Double(lastDelivery - firstSend) / 1e9)
        }
        result.mbPerSec = result.publishedMsgsPerSec * Double(result.size) / 1e6
        result.ok = result.isCorrect
    }
}

private func cpuDelta(_ before: Double?, _ after: Double?) -> Double? {
    guard let before, let after else { return nil }
    return after - before
}
