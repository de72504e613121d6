import Foundation
import Logging
import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import RelayWire
@testable import RelayBroker

/// A ``SessionEnvironment`` that records every action as one line of text
/// and answers look-ups from plain fields: the state machine tests run with
/// no process, socket, event loop or store.
final class RecordingEnvironment: SessionEnvironment {
    /// Every action and delivery, in order, as short text (see ``line(_:)``).
    var log: [String] = []
    var audits: [String] = []
    var appended: [[NewMessage]] = []

    var policy: Policy
    var reverifyError: TLSError?
    /// Durable names another connection holds.
    var durablesElsewhere: Set<String> = []
    var cursors: [String: UInt64] = [:]
    /// The filter stored with a cursor; a cursor without one takes the SUB's (as relayd adopts it).
    var cursorFilters: [String: String] = [:]
    var startError: StoreError?
    /// What the log resolves a stored start position to.
    var resolvedStart: UInt64 = 1
    var watermark: UInt64 = 0
    /// The messages a replay reads (matching is by filter).
    var stored: [StoredMessage] = []
    var readError: StoreError?
    var canDeliver: Bool {
        get {
            canDeliverChecks += 1
            return deliverable
        }
        set { deliverable = newValue }
    }
    private var deliverable = true
    /// How many times the machine asked ``canDeliver``: once per batch of
    /// live messages, and once or more per subscription a delivery turn visits.
    private(set) var canDeliverChecks = 0
    /// Sequences whose MSG does not fit the peer.
    var oversize: Set<UInt64> = []
    /// True: the machine asks for a SUB's look-ups (`lookup <id>`) instead
    /// of making them; the test answers with `startLookedUp`.
    var readsWait = false
    /// The replay reads asked for (``SessionAction/readReplay(subscriptionID:_:)``), in order.
    var replayReads: [ReplayRead] = []

    init(policy: Policy) { self.policy = policy }

    func reverifyIfReloaded(_ chain: PeerCertificateChain) -> TLSError? { reverifyError }
    func permissions(for identity: Identity) -> Permissions { policy.permissions(for: identity) }

    func claimDurable(owner: DurableOwner, name: String) -> Bool {
        guard !durablesElsewhere.contains(name) else { return false }
        log.append("claim \(name)")
        return true
    }

    func resumeCursor(owner: DurableOwner, name: String, principal: String, filter: String) throws(StoreError) -> DurableCursor? {
        cursors[name].map { DurableCursor(sequence: $0, filter: cursorFilters[name] ?? filter) }
    }

    /// What ``durablesHeld(owner:besides:upTo:)`` answers.
    var heldDurables = 0

    func durablesHeld(owner: DurableOwner, besides name: String, upTo limit: Int) throws(StoreError) -> Int { heldDurables }

    func startSequence(_ start: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64 {
        if let startError { throw startError }
        return resolvedStart
    }

    func route(_ filter: TopicFilter, subscriptionID: UInt32) throws(StoreError) -> UInt64 {
        log.append("route \(subscriptionID) \(filter)")
        return watermark
    }

    func read(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int) throws(StoreError) -> ReadBatch {
        if let readError { throw readError }
        let matching = stored.filter { $0.sequence >= from && filter.matches($0.topic) }.prefix(maxMessages)
        let next = matching.count == maxMessages ? (matching.last?.sequence ?? from) + 1 : max(from, watermark + 1)
        return ReadBatch(messages: Array(matching), next: next, reachedEnd: matching.count < maxMessages)
    }

    func deliver(_ message: RoutedMessage, subscriptionID: UInt32) -> Bool {
        guard !oversize.contains(message.sequence) else { return false }
        log.append("msg \(subscriptionID) \(message.sequence)")
        return true
    }

    func deliverReplayed(_ message: StoredMessage, subscriptionID: UInt32) -> Bool {
        guard !oversize.contains(message.sequence) else { return false }
        log.append("msg \(subscriptionID) \(message.sequence) replayed")
        return true
    }

    func run(_ action: SessionAction) {
        if case .append(let messages, _) = action { appended.append(messages) }
        if case .readReplay(_, let read) = action { replayReads.append(read) }
        log.append(Self.line(action))
    }

    func audit(_ event: String, _ fields: KeyValuePairs<String, any Sendable>) { audits.append(event) }

    /// Forgets what was recorded so far (the set-up's actions).
    func clear() {
        log.removeAll()
        audits.removeAll()
    }

    static func line(_ action: SessionAction) -> String {
        switch action {
        case .send(let output):
            switch output {
            case .welcome(let version, let principal, _, let limit): return "welcome v\(version) \(principal) limit \(limit)"
            case .published(let id, let receipt): return "puback \(id) seq \(receipt.sequence)\(receipt.duplicate ? " duplicate" : "")"
            case .publishRefused(let id, let code, _): return "puberr \(id) \(code.name)"
            case .subscribed(let id, let first, _): return "suback \(id) first \(first)"
            case .subscribeRefused(let id, let code, _): return "suback \(id) \(code.name)"
            case .subscriptionEnded(let id, let code, _): return "err \(id) \(code.name)"
            case .adminEnded(let id, let code, _): return "adminreply \(id) \(code.name)"
            }
        case .close(.error(let code, _)): return "close \(code.name)"
        case .close(.goodbye): return "bye"
        case .append(_, let ids): return "append \(ids.map(String.init).joined(separator: ","))"
        case .commitCursor(_, let name, let sequence, _): return "commit \(name) \(sequence)"
        case .detachDurable(_, let name, let lastAck, _): return "detach \(name) \(lastAck.map(String.init) ?? "-")"
        case .releaseDurable(_, let name): return "release \(name)"
        case .lookUpStart(let id, _): return "lookup \(id)"
        case .readReplay(let id, let read): return "read \(id) from \(read.from) max \(read.maxMessages)"
        case .unroute(_, let id): return "unroute \(id)"
        case .pauseReading: return "pause"
        case .resumeReading: return "resume"
        case .schedulePump: return "pump"
        case .yieldPump: return "pump after I/O"
        }
    }
}

/// Builds machines in a known state for the tests.
enum SessionFixture {
    static let everything = RuleDefinition(name: "all", publish: ["t.>"], subscribe: ["t.>"])

    static func identity(cn: String = "svc") -> Identity {
        let subject = DistinguishedName(rdns: [[.init(oid: "2.5.4.3", shortName: "CN", value: cn)]])
        let issuer = DistinguishedName(rdns: [[.init(oid: "2.5.4.3", shortName: "CN", value: "Root CA")]])
        return Identity(subject: subject, issuer: issuer, serialNumber: "01", notBefore: Date(timeIntervalSince1970: 0),
                        notAfter: Date(timeIntervalSince1970: 4_000_000_000),
                        fingerprintSHA256: CertificateFingerprint(w0: 0xAAAA_AAAA_AAAA_AAAA, w1: 0xAAAA_AAAA_AAAA_AAAA, w2: 0xAAAA_AAAA_AAAA_AAAA, w3: 0xAAAA_AAAA_AAAA_AAAA), sans: SubjectAlternativeNames(), spiffe: nil)
    }

    static func handshake(_ identity: Identity = identity()) -> TLSHandshakeCompleted {
        TLSHandshakeCompleted(peer: identity, peerChain: PeerCertificateChain(derCertificates: [[1, 2, 3]]),
                              protocolVersion: "TLSv1.3", cipherSuite: "TLS_AES_128_GCM_SHA256")
    }

    static let limits = SessionLimits(maxInFlightPublishes: 4, maxSubscriptions: 3, subscriptionBuffer: 100)
    static let opening = SessionOpening(version: 1, peerFrameLimit: 4096, producerSession: ProducerSessionID(high: 1, low: 2))

    static func machine(limits: SessionLimits = limits) -> SessionStateMachine {
        SessionStateMachine(limits: limits, metrics: BrokerMetrics(),
                            logger: Logger(label: "session-test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static func environment(_ rules: RuleDefinition...) throws -> RecordingEnvironment {
        RecordingEnvironment(policy: try Policy(definitions: rules.isEmpty ? [everything] : rules))
    }

    /// A machine past HELLO, with the environment's log cleared.
    static func active(limits: SessionLimits = limits, opening: SessionOpening = opening,
                       _ env: RecordingEnvironment) -> SessionStateMachine {
        var machine = machine(limits: limits)
        machine.handshakeCompleted(handshake())
        machine.open(opening, env)
        env.clear()
        return machine
    }

    static func publish(_ id: UInt64, topic: String = "t.a", payload: String = "x") -> Result<PublishRequest, OperationError> {
        guard let topic = try? Topic(topic) else { return .failure(OperationError(.invalidTopic, "bad topic")) }
        return .success(PublishRequest(publishID: id, topic: topic, headers: .empty, payload: ByteBuffer(string: payload)))
    }

    static func subscribe(_ filter: String = "t.>", start: StartPosition = .latest, durable: String = "",
                          credit: UInt32 = 10, ackMode: AckMode = .none) -> Result<SubscribeRequest, OperationError> {
        guard let filter = try? TopicFilter(filter) else { return .failure(OperationError(.invalidFilter, "bad filter")) }
        return .success(SubscribeRequest(filter: filter, start: start, durableName: durable, initialCredit: credit,
                                         ackMode: ackMode))
    }

    static func receipt(_ sequence: UInt64, duplicate: Bool = false) -> Result<AppendReceipt, StoreError> {
        .success(AppendReceipt(sequence: sequence, timestamp: sequence, duplicate: duplicate))
    }

    static func stored(_ sequence: UInt64, topic: String = "t.a", timestamp: UInt64? = nil) -> StoredMessage {
        StoredMessage(sequence: sequence, timestamp: timestamp ?? sequence, topic: (try? Topic(topic))!,
                      publisher: PublisherStamp(principal: "CN=p", fingerprint: CertificateFingerprint(w0: 0xBB, w1: 0xBB, w2: 0xBB, w3: 0xBB)),
                      headers: .empty, payload: ByteBuffer(string: "m"))
    }

    static func live(_ sequence: UInt64, subscription: UInt32 = 1, timestamp: UInt64? = nil) -> RoutedDelivery {
        let prepared = try? PreparedMessage(sequence: sequence, timestamp: timestamp ?? sequence, topic: "t.a",
                                            publisherPrincipal: "CN=p", publisherFingerprint: .zero, headers: .empty,
                                            payload: ByteBuffer(string: "m"))
        return RoutedDelivery(subscription: subscription,
                              message: RoutedMessage(sequence: sequence, timestamp: timestamp ?? sequence, topic: "t.a",
                                                     prepared: prepared!))
    }
}
