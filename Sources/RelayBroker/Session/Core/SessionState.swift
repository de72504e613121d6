import CoreMetrics
import DequeModule
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
    /// A shutdown's grace ended with ADMINs running: the broker asked them
    /// to stop, and the session waits one grace more for their answers.
    var adminStopAwaited = false
    var subscriptions = SubscriptionTable()
    /// The last ``ReplayRead/token`` handed out: each read gets a new one,
    /// so an answer for a subscription since ended (its id maybe reused) matches nothing.
    var lastReplayRead: UInt64 = 0
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

    /// `ack_mode` none on a durable: the cursor follows what is sent (§4.6).
    let cursorFollowsDelivery: Bool
    /// In the table's queue of subscriptions with work (``SubscriptionTable/markReady(_:)``).
    fileprivate(set) var queued = false
    /// A replay read made off the loop and not answered yet: its token
    /// (``ReplayRead/token``). The turns skip the subscription until it is.
    var awaitingRead: UInt64?
    /// What that read returned and the turns have not sent yet.
    var readAhead: ReadAhead?

    init(delivery: SubscriptionDelivery, durableName: String?, ackMode: AckMode) {
        self.delivery = delivery
        self.durableName = durableName
        self.ackMode = ackMode
        self.cursorFollowsDelivery = durableName != nil && ackMode == .none
    }

    var id: UInt32 { delivery.id }

    /// Moves the cursor (never backwards).
    func advanceCursor(to sequence: UInt64) {
        let highest = max(highestAck ?? 0, sequence)
        highestAck = highest
        pendingAck = highest
    }
}

/// The open subscriptions of one session, by the client's subscription id,
/// and the queue of those that may have work for the delivery turn.
///
/// The queue: every open subscription with work (credit, and a replay to
/// read or a buffered message: ``SubscriptionDelivery/hasWork``) is in it;
/// it may also hold some without (the turn drops them), never an ended one
/// (``remove(_:)`` takes it out, so its buffer goes at once). Whatever can give a
/// subscription work queues it: opening it, CREDIT, a live message it
/// buffers or drops for the store (``SubscriptionDelivery/offerLive(_:)``,
/// an overflow), and the turn itself for one it leaves with work. So a
/// turn visits only the subscriptions with work, not the idle ones (+481
/// instructions per idle subscription per routed batch when it walked
/// them all, docs/testing.md "Cheap requests, expensive broker"), and the
/// turn takes them in turn: one left with work goes to the back, so the
/// next turn starts with the next one (a sparse replay's scan does not
/// hold the connection's other subscriptions back).
struct SubscriptionTable {
    private(set) var entries: [UInt32: SubscriptionEntry] = [:]
    /// Some entry has a ``SubscriptionEntry/pendingAck``: saves a walk of
    /// the table at the end of every read batch that moved no cursor.
    private(set) var hasPendingAcks = false
    private var ready = Deque<SubscriptionEntry>()

    var count: Int { entries.count }
    var ids: Dictionary<UInt32, SubscriptionEntry>.Keys { entries.keys }

    subscript(id: UInt32) -> SubscriptionEntry? { entries[id] }

    /// A new subscription is queued: it may start with a replay.
    mutating func insert(_ entry: SubscriptionEntry) {
        entries[entry.id] = entry
        markReady(entry)
    }

    /// Also out of the queue: an ended subscription's buffer (and its share
    /// of the connection's ``DeliveryBudget``) goes now, not at the next turn.
    /// A walk of the queue, only when it holds the entry (UNSUB is rare).
    mutating func remove(_ id: UInt32) -> SubscriptionEntry? {
        guard let entry = entries.removeValue(forKey: id) else { return nil }
        if entry.queued, let index = ready.firstIndex(where: { $0 === entry }) {
            ready.remove(at: index)
            entry.queued = false
        }
        return entry
    }

    /// Queues `entry` for the delivery turn, unless it is queued already.
    @inline(__always)
    mutating func markReady(_ entry: SubscriptionEntry) {
        guard !entry.queued else { return }
        entry.queued = true
        ready.append(entry)
    }

    /// How many entries the queue holds: a turn takes at most these, so a
    /// subscription it puts back is not visited twice in one turn.
    var readyCount: Int { ready.count }

    /// The next queued entry, out of the queue, while `remaining` (counted
    /// down for each entry taken) lasts; nil when none is left.
    mutating func takeReady(within remaining: inout Int) -> SubscriptionEntry? {
        guard remaining > 0, let entry = ready.popFirst() else { return nil }
        remaining -= 1
        entry.queued = false
        return entry
    }

    /// Open subscriptions with work that are not queued: none, ever (a
    /// check for the tests; it walks the whole table).
    var forgottenWork: [UInt32] {
        entries.values.filter { $0.delivery.hasWork && !$0.queued && $0.awaitingRead == nil }.map(\.id).sorted()
    }

    /// The end of a run of live messages for `entry` in a routed batch:
    /// queued if it buffered one (or dropped its buffer for the store), and
    /// its cursor moved if it follows what is sent.
    mutating func runEnded(_ entry: SubscriptionEntry, offered: Bool) {
        if offered { markReady(entry) }
        cursorFollowsDelivery(entry)
    }

    /// `ack_mode` none on a durable: moves the cursor to the last sequence
    /// sent or passed over (§4.6).
    mutating func cursorFollowsDelivery(_ entry: SubscriptionEntry) {
        guard entry.cursorFollowsDelivery else { return }
        let passed = entry.delivery.nextSequence &- 1
        if passed > (entry.highestAck ?? 0) { advanceCursor(entry, to: passed) }
    }

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
        for entry in ready { entry.queued = false }
        entries.removeAll()
        ready.removeAll()
        hasPendingAcks = false
        return all
    }
}
