import CoreMetrics
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import RelayWire

/// Where a session is in its life. Each state carries exactly the data that
/// exists in it, so nothing established at HELLO is an optional elsewhere.
///
///     awaitingHandshake ─TLS verified─▶ awaitingHello ─HELLO accepted─▶ active
///     active ─client BYE / broker shutdown─▶ draining ─last PUB answered─▶ closed
///     any ─ERR, TLS error, close─▶ closed
enum SessionState {
    /// TLS is still handshaking: no frame can have arrived.
    case awaitingHandshake
    /// The client certificate verified; waiting for HELLO within the hello timeout.
    /// Boxed (`indirect`): the handshake is a large struct, and with it inline
    /// every `case .active(let session) = state` (once per PUB) copied the
    /// whole enum through its value witness; boxed, every payload is one
    /// reference.
    indirect case awaitingHello(TLSHandshakeCompleted)
    case active(ActiveSession)
    /// No more requests are read; the PUBs already read are answered, then
    /// the session ends (BYE for a client's BYE, ERR `server_shutting_down`
    /// for a broker shutdown). Subscriptions keep delivering meanwhile.
    case draining(ActiveSession, DrainReason)
    /// ERR or BYE sent, or the connection ended: everything is ignored.
    /// Keeps the session (if it got that far) until tear-down releases
    /// its routes and durable names.
    case closed(ActiveSession?)
}

enum DrainReason: Equatable {
    /// The client said BYE (Protocol/relay-v1.md §4.14): answer BYE when drained.
    case goodbye
    /// The broker is stopping: ERR `server_shutting_down` when drained.
    case shutdown
}

/// What HELLO establishes, once, plus the two things that change during a
/// session: the publish window and the subscription table.
///
/// A class, not a struct: a struct in an enum payload is copied out and
/// back on every event, retaining each of these fields per PUB frame; a
/// reference is mutated in place (as ``SubscriptionDelivery``).
final class ActiveSession {
    let identity: Identity
    let peerChain: PeerCertificateChain
    /// The name stamped on this session's messages, fixed at HELLO (a reload
    /// changes permissions, never who published).
    let principal: String
    /// The one copy of the policy's answer for this identity; replaced by a reload.
    private(set) var permissions: Permissions
    /// Publish decisions per topic, rebuilt with ``permissions``.
    var publishCache: PublishCache
    /// The store's publisher record of this session's messages.
    let publisher: PublisherStamp
    /// The producer session of HELLO (``ProducerSessionID/none``: no dedup).
    let producerSession: ProducerSessionID
    /// Whose durable cursors this session's are (IdentityScope); dedup
    /// entries are keyed by ``publisher``'s fingerprint. Worked out at the
    /// first durable subscription (`identity` never changes): most sessions
    /// have none, and the digest was ~14,000 instructions per handshake.
    private(set) lazy var durableOwner: DurableOwner? = IdentityScope.durableOwner(identity)
    /// The largest frame the peer accepts (its HELLO).
    let peerFrameLimit: Int
    var window = PublishWindow()
    /// Authorized ADMINs whose last ADMINREPLY is not written yet: a
    /// client's BYE waits for them as for its PUBs' answers (§4.14).
    var adminInFlight = 0
    /// The request ids of those that are backups (counted in ``adminInFlight``
    /// too): a shutdown ends them instead of waiting for a long copy.
    var backupsInFlight: Set<UInt32> = []
    /// Backups a shutdown ended: what their stream still sends is dropped.
    var backupsEnded: Set<UInt32> = []
    var subscriptions = SubscriptionTable()
    /// The live-buffer bytes of all this session's subscriptions together: one
    /// subscription's own limit (64 MiB), so 1,000 subscriptions that never
    /// grant credit hold no more than one would; also taken from the
    /// broker's budget of all connections together.
    let deliveryBudget: DeliveryBudget

    init(identity: Identity, peerChain: PeerCertificateChain, permissions: Permissions,
         producerSession: ProducerSessionID, peerFrameLimit: Int, liveBuffers: LiveBufferBudget? = nil,
         fallbacks: Counter? = nil) {
        self.deliveryBudget = DeliveryBudget(limit: 64 << 20, shared: liveBuffers, fallbacks: fallbacks)
        self.identity = identity
        self.peerChain = peerChain
        self.principal = permissions.principal
        self.permissions = permissions
        self.publishCache = PublishCache(permissions: permissions)
        self.publisher = PublisherStamp(principal: permissions.principal, fingerprint: identity.fingerprintSHA256)
        self.producerSession = producerSession
        self.peerFrameLimit = peerFrameLimit
    }

    /// A reload's new permissions apply from the next operation on.
    func replacePermissions(_ permissions: Permissions) {
        self.permissions = permissions
        self.publishCache = PublishCache(permissions: permissions)
    }
}

/// The publishes read but not yet answered.
struct PublishWindow {
    /// Validated PUBs of the current read batch, not yet handed to the log.
    var pending: [NewMessage] = []
    var pendingIDs: [UInt64] = []
    /// Handed to the log (or pending) and not yet answered.
    var inFlight = 0
    /// Reading is paused because the window is full.
    var paused = false
}

/// One open subscription: how it delivers, and its durable cursor if it has one.
///
/// A class, like ``SubscriptionDelivery``: every live delivery looks its
/// entry up, and a struct would be copied out of the table each time.
final class SubscriptionEntry {
    let delivery: SubscriptionDelivery
    /// Nil for an ephemeral subscription.
    let durableName: String?
    let ackMode: AckMode
    /// The cursor position to commit at the end of this batch, if it moved.
    var pendingAck: UInt64?
    /// The highest cursor position seen, committed or not: detaching
    /// re-commits it, so the release waits for every earlier commit.
    var highestAck: UInt64?

    init(delivery: SubscriptionDelivery, durableName: String?, ackMode: AckMode) {
        self.delivery = delivery
        self.durableName = durableName
        self.ackMode = ackMode
    }

    var id: UInt32 { delivery.id }

    /// Moves the cursor (never backwards).
    func advanceCursor(to sequence: UInt64) {
        let highest = max(highestAck ?? 0, sequence)
        highestAck = highest
        pendingAck = highest
    }
}

/// The open subscriptions of one session, by the client's subscription id.
struct SubscriptionTable {
    private(set) var entries: [UInt32: SubscriptionEntry] = [:]
    /// Some entry has a ``SubscriptionEntry/pendingAck``: saves a walk of
    /// the table at the end of every read batch that moved no cursor.
    private(set) var hasPendingAcks = false

    var count: Int { entries.count }
    var ids: Dictionary<UInt32, SubscriptionEntry>.Keys { entries.keys }

    subscript(id: UInt32) -> SubscriptionEntry? { entries[id] }

    mutating func insert(_ entry: SubscriptionEntry) { entries[entry.id] = entry }

    mutating func remove(_ id: UInt32) -> SubscriptionEntry? { entries.removeValue(forKey: id) }

    mutating func advanceCursor(_ entry: SubscriptionEntry, to sequence: UInt64) {
        entry.advanceCursor(to: sequence)
        hasPendingAcks = true
    }

    /// Takes the cursor positions to commit, one per moved durable cursor:
    /// its name, its subscription's filter (stored with the cursor) and the position.
    mutating func takePendingAcks(_ body: (String, TopicFilter, UInt64) -> Void) {
        guard hasPendingAcks else { return }
        hasPendingAcks = false
        for entry in entries.values {
            guard let ack = entry.pendingAck else { continue }
            entry.pendingAck = nil
            if let name = entry.durableName { body(name, entry.delivery.filter, ack) }
        }
    }

    /// Every entry, by id, leaving the table empty.
    mutating func removeAll() -> [SubscriptionEntry] {
        let all = entries.sorted { $0.key < $1.key }.map(\.value)
        entries.removeAll()
        hasPendingAcks = false
        return all
    }
}
