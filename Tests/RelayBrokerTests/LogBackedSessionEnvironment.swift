import NIOConcurrencyHelpers
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import Testing
@testable import RelayBroker

/// A ``SessionEnvironment`` whose store-facing actions and look-ups run
/// against a real ``MessageLog`` (an ``InMemoryMessageLog`` in the tests):
/// appends are stored and their receipts fed back to the machine, start
/// positions, replays and durable cursors come from the log. Everything
/// else (policy, deliveries, the text log of actions) is the wrapped
/// ``RecordingEnvironment``'s, so both suites read the same lines.
///
/// What it does not do: live routing. A subscription sees what the log held
/// when it was routed (its watermark is the log's last sequence) and what it
/// replays; messages appended later reach it only by a new subscription.
final class LogBackedSessionEnvironment: SessionEnvironment {
    let recording: RecordingEnvironment
    /// Typed as the protocol: these tests use only the seam.
    let messageLog: any MessageLog
    /// Every replayed message as delivered (publisher stamp and headers included).
    private(set) var replayed: [StoredMessage] = []
    /// Durable names this environment holds (the broker's claim table, for one session).
    private(set) var claimed: Set<String> = []
    /// Cursor commits the log refused.
    private(set) var cursorFailures: [StoreError] = []

    /// Answers the log gave that the machine has not been told yet. The log
    /// may complete on any thread; the machine is told on the test's
    /// (as the adapter hops back to the session's event loop).
    private let completions = NIOLockedValueBox<[(ids: [UInt64], results: [Result<AppendReceipt, StoreError>])]>([])
    private var pumpRequested = false
    /// The last pump asked for was to run after the event loop served its
    /// sockets (``SessionAction/yieldPump``).
    private(set) var lastPumpYields = false
    /// Store reads made, each examining at most 65,536 records.
    private(set) var reads = 0

    init(recording: RecordingEnvironment, log: any MessageLog) {
        self.recording = recording
        self.messageLog = log
    }

    /// Whether a pump was asked for since the last call (which forgets it).
    func takePumpRequest() -> Bool {
        defer { pumpRequested = false }
        return pumpRequested
    }

    /// The action lines, as ``RecordingEnvironment/log``.
    var lines: [String] { recording.log }

    /// Runs what the adapter's event loop would after an event: feeds every
    /// answered append back to the machine, and pumps when asked, until
    /// nothing is left to do.
    func settle(_ machine: inout SessionStateMachine) {
        while true {
            let answered = completions.withLockedValue { pending in
                defer { pending.removeAll() }
                return pending
            }
            for append in answered { machine.commitCompleted(ids: append.ids, results: append.results, self) }
            if pumpRequested {
                pumpRequested = false
                machine.pump(self)
            } else if answered.isEmpty {
                return
            }
        }
    }

    // MARK: Store look-ups, answered by the log

    func claimDurable(owner: DurableOwner, name: String) -> Bool {
        guard recording.claimDurable(owner: owner, name: name) else { return false }
        return claimed.insert(name).inserted
    }

    /// The stored cursor and filter (relayd's adoption of a missing filter is SessionIO's, not tested here).
    func resumeCursor(owner: DurableOwner, name: String, principal: String, filter: String) throws(StoreError) -> DurableCursor? {
        try messageLog.durableCursor(owner: owner, name: name)
    }

    func durablesHeld(owner: DurableOwner, besides name: String, upTo limit: Int) throws(StoreError) -> Int {
        try messageLog.durableNames(owner: owner, limit: limit + 1).filter { $0 != name }.count
    }

    func startSequence(_ start: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64 {
        try messageLog.startSequence(start, filter: filter)
    }

    func route(_ filter: TopicFilter, subscriptionID: UInt32) throws(StoreError) -> UInt64 {
        _ = try recording.route(filter, subscriptionID: subscriptionID)
        do {
            return try messageLog.lastSequence()
        } catch {
            Issue.record("the log has no last sequence: \(error)")
            return 0
        }
    }

    func read(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int) throws(StoreError) -> ReadBatch {
        reads += 1
        return try messageLog.read(from: from, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes, maxScan: 65_536)
    }

    // MARK: Actions

    func run(_ action: SessionAction) {
        recording.run(action)
        switch action {
        case .append(let messages, let ids):
            let completions = self.completions
            messageLog.append(messages) { results in
                completions.withLockedValue { $0.append((ids, results)) }
            }
        case .commitCursor(let owner, let name, let sequence, let filter):
            commit(owner: owner, name: name, sequence: sequence, filter: filter)
        case .detachDurable(let owner, let name, let lastAck, let filter):
            if let lastAck { commit(owner: owner, name: name, sequence: lastAck, filter: filter) }
            claimed.remove(name)
        case .releaseDurable(_, let name):
            claimed.remove(name)
        case .schedulePump:
            pumpRequested = true
            lastPumpYields = false
        case .yieldPump:
            pumpRequested = true
            lastPumpYields = true
        case .send, .close, .unroute, .pauseReading, .resumeReading, .lookUpStart, .readReplay:  // readsWait is false
            break
        }
    }

    private func commit(owner: DurableOwner, name: String, sequence: UInt64, filter: String) {
        let failure = NIOLockedValueBox<StoreError?>(nil)
        messageLog.commitCursor(owner: owner, name: name, sequence: sequence, filter: filter) { result in
            if case .failure(let error) = result { failure.withLockedValue { $0 = error } }
        }
        // The in-memory log completes before commitCursor returns.
        if let error = failure.withLockedValue({ $0 }) { cursorFailures.append(error) }
    }

    // MARK: The rest, as the recording environment

    var canDeliver: Bool { recording.canDeliver }

    func reverifyIfReloaded(_ chain: PeerCertificateChain) -> TLSError? { recording.reverifyIfReloaded(chain) }

    func permissions(for identity: Identity) -> Permissions { recording.permissions(for: identity) }

    func deliver(_ message: RoutedMessage, subscriptionID: UInt32) -> Bool {
        recording.deliver(message, subscriptionID: subscriptionID)
    }

    func deliverReplayed(_ message: StoredMessage, subscriptionID: UInt32) -> Bool {
        guard recording.deliverReplayed(message, subscriptionID: subscriptionID) else { return false }
        replayed.append(message)
        return true
    }

    func audit(_ event: String, _ fields: KeyValuePairs<String, any Sendable>) { recording.audit(event, fields) }
}
