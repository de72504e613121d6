import Foundation
import NIOConcurrencyHelpers
import RelayCore
import RelayStore
import RelayTLS

/// What the admin operations need that the broker does not otherwise keep:
/// start time, the config digest at load, connection ids, the message
/// totals of closed sessions, the last rate sample, durable activity seen
/// since start, and the reload entry point. Shared by every session; each
/// method takes the lock once (none runs per message: sessions count their
/// own messages and hand the totals over when they close).
public final class AdminState: Sendable {
    public let startedAt = Date()
    private let state = NIOLockedValueBox(State())
    /// Runs the broker's reload (set by ``Broker/start``); nil in unit tests.
    private let reloader = NIOLockedValueBox<(@Sendable () -> ReloadOutcome)?>(nil)

    struct State {
        var nextConnectionID: UInt64 = 1
        var configDigest: String?
        var configLoadedAt = Date()
        var closedIn: UInt64 = 0
        var closedOut: UInt64 = 0
        var lastSample: (at: Date, messagesIn: UInt64, messagesOut: UInt64)?
        var durables: [DurableKey: DurableActivity] = [:]
    }

    struct DurableKey: Hashable {
        var owner: DurableOwner
        var name: String
    }

    /// The last attach and ack of a durable seen since relayd started.
    struct DurableActivity {
        var principal: String?
        var filter: String?
        var lastAck: Date?
    }

    init() {}

    func nextConnectionID() -> UInt64 {
        state.withLockedValue { state in
            defer { state.nextConnectionID += 1 }
            return state.nextConnectionID
        }
    }

    /// Records the config file's digest as loaded (at start and every applied reload).
    func configurationLoaded(path: String) {
        let digest = FileManager.default.contents(atPath: path).map { SHA256.hex(Array($0)) }
        state.withLockedValue { state in
            state.configDigest = digest
            state.configLoadedAt = Date()
        }
    }

    var configuration: (digest: String?, loadedAt: Date) {
        state.withLockedValue { ($0.configDigest, $0.configLoadedAt) }
    }

    func sessionClosed(messagesIn: UInt64, messagesOut: UInt64) {
        state.withLockedValue { state in
            state.closedIn &+= messagesIn
            state.closedOut &+= messagesOut
        }
    }

    /// Totals including live sessions' counts; rates over the time since the previous call (at least 1 s).
    func rates(liveIn: UInt64, liveOut: UInt64) -> (totalIn: UInt64, totalOut: UInt64, inPerSecond: Double, outPerSecond: Double) {
        let now = Date()
        return state.withLockedValue { state in
            let totalIn = state.closedIn &+ liveIn, totalOut = state.closedOut &+ liveOut
            let sample = state.lastSample ?? (startedAt, 0, 0)
            let elapsed = max(now.timeIntervalSince(sample.at), 0.001)
            let rates = (Double(totalIn &- min(totalIn, sample.messagesIn)) / elapsed,
                         Double(totalOut &- min(totalOut, sample.messagesOut)) / elapsed)
            if state.lastSample == nil || elapsed >= 1 { state.lastSample = (now, totalIn, totalOut) }
            return (totalIn, totalOut, rates.0, rates.1)
        }
    }

    func durableSeen(owner: DurableOwner, name: String, principal: String, filter: String) {
        state.withLockedValue { state in
            let key = DurableKey(owner: owner, name: name)
            var activity = state.durables[key] ?? DurableActivity()
            activity.principal = principal
            activity.filter = filter
            state.durables[key] = activity
        }
    }

    func durableAcknowledged(owner: DurableOwner, name: String) {
        state.withLockedValue { state in
            state.durables[DurableKey(owner: owner, name: name), default: DurableActivity()].lastAck = Date()
        }
    }

    func durableForgotten(owner: DurableOwner, name: String) {
        _ = state.withLockedValue { $0.durables.removeValue(forKey: DurableKey(owner: owner, name: name)) }
    }

    func durableActivity(owner: DurableOwner, name: String) -> DurableActivity? {
        state.withLockedValue { $0.durables[DurableKey(owner: owner, name: name)] }
    }

    func setReloader(_ reload: @escaping @Sendable () -> ReloadOutcome) {
        reloader.withLockedValue { $0 = reload }
    }

    func reload() -> ReloadOutcome? {
        reloader.withLockedValue { $0 }?()
    }
}
