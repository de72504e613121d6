import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import RelayWire

// The session core speaks in domain values, not frames: a wire protocol's
// layer (Relay v1 today: ``SessionHandler``) maps its frames to these
// requests and the ``SessionOutput``s back to its frames. ByteBuffer is
// NIOCore's byte container, used as a value (payloads pass through untouched);
// nothing here touches a channel, an event loop or a timer.

/// A session opening: what the wire protocol's hello negotiated.
struct SessionOpening: Equatable {
    /// The protocol version agreed on (echoed in the welcome; opaque here).
    var version: UInt16
    /// The largest frame the peer accepts.
    var peerFrameLimit: Int
    var producerSession: ProducerSessionID
}

/// A publish that passed the wire layer's checks (topic grammar, reserved
/// topics, payload size, headers: Protocol/relay-v1.md §4.3 steps 1-4).
struct PublishRequest {
    var publishID: UInt64
    var topic: Topic
    /// The header block as the publisher sent it (checked by the wire layer).
    var headers: HeaderBlock
    var payload: ByteBuffer
}

/// A subscribe that passed the wire layer's checks (filter grammar, start
/// values, durable name grammar: §4.6).
struct SubscribeRequest: Equatable {
    var filter: TopicFilter
    var start: StartPosition
    /// Empty: ephemeral.
    var durableName: String
    var initialCredit: UInt32
    var ackMode: AckMode
}

/// What the session tells the client, in protocol-neutral terms.
enum SessionOutput: Equatable {
    /// The session is open; from now on frames to the peer may be as large
    /// as its limit.
    case welcome(version: UInt16, principal: String, identity: Identity, peerFrameLimit: Int)
    case published(publishID: UInt64, AppendReceipt)
    case publishRefused(publishID: UInt64, RelayErrorCode, String)
    /// `notice`: empty, or why the SUB's start position was not used (§4.7).
    case subscribed(subscriptionID: UInt32, firstSequence: UInt64, notice: String)
    case subscribeRefused(subscriptionID: UInt32, RelayErrorCode, String)
    /// A subscription ended (or never existed) by the broker's decision.
    case subscriptionEnded(subscriptionID: UInt32, RelayErrorCode, String)
    /// An ADMIN's last ADMINREPLY, a refusal the session decides (a backup a shutdown ends).
    case adminEnded(requestID: UInt32, RelayErrorCode, String)
}

/// How the connection ends.
enum SessionClose: Equatable {
    /// A connection-level error: tell the client, then close.
    case error(RelayErrorCode, String)
    /// A clean goodbye (the answer to the client's).
    case goodbye
}

/// What the session asks its environment to do. Decided by the core,
/// run by the adapter, recorded by the unit tests.
enum SessionAction {
    case send(SessionOutput)
    /// Write what is pending, then close the connection.
    case close(SessionClose)
    /// One append to the log; the answers come back as
    /// ``SessionStateMachine/commitCompleted(ids:results:_:)``, in this order.
    case append([NewMessage], publishIDs: [UInt64])
    /// `filter`: the subscription's, stored with the cursor (§4.6).
    case commitCursor(owner: DurableOwner, name: String, sequence: UInt64, filter: String)
    /// Commit the last cursor position (if any), then release the name.
    case detachDurable(owner: DurableOwner, name: String, lastAck: UInt64?, filter: String)
    case releaseDurable(owner: DurableOwner, name: String)
    /// Make a SUB's look-ups off the event loop (the log's reads wait on a
    /// service); the answer comes back as ``SessionStateMachine/startLookedUp(_:_:_:)``.
    case lookUpStart(subscriptionID: UInt32, StartLookup)
    /// Read a replay's next batch off the event loop (the log's reads wait on
    /// a service); it comes back as ``SessionStateMachine/replayRead(_:_:_:_:)``.
    case readReplay(subscriptionID: UInt32, ReplayRead)
    /// Stop routing to this subscription.
    case unroute(TopicFilter, subscriptionID: UInt32)
    case pauseReading
    case resumeReading
    /// Deliver later, from the event loop (a new subscription, new credit,
    /// a delivery budget used up).
    case schedulePump
    /// Deliver later, after the event loop has served its sockets: a replay
    /// read examined its bound of records and sent nothing (a sparse filter
    /// over a long log). A turn queued as a plain task would run before the
    /// sockets, so the next read would follow at once, for the whole log.
    case yieldPump
}

/// The session core's view of the broker: look-ups it needs an answer to
/// now (store reads, claims, routing), deliveries (they may not fit the
/// peer), and actions. A class: the adapter owns the output buffer it
/// writes into while the state machine is being mutated.
protocol SessionEnvironment: AnyObject, StartLookups {
    /// Verifies a handshake's chain again if a reload happened since the
    /// connection was accepted (nil: fine).
    func reverifyIfReloaded(_ chain: PeerCertificateChain) -> TLSError?
    /// The current policy's answer for `identity`.
    func permissions(for identity: Identity) -> Permissions
    func claimDurable(owner: DurableOwner, name: String) -> Bool
    /// True when the log's reads wait on a service: the machine then asks
    /// for a SUB's look-ups (``StartLookups``) and a replay's reads with
    /// ``SessionAction/lookUpStart(subscriptionID:_:)`` and
    /// ``SessionAction/readReplay(subscriptionID:_:)`` instead of making them inline.
    var readsWait: Bool { get }
    /// Adds the subscription to routing; returns the watermark (see ``Router``).
    /// Throws when live delivery cannot start (a shared log's tail cannot be opened).
    func route(_ filter: TopicFilter, subscriptionID: UInt32) throws(StoreError) -> UInt64
    func read(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int) throws(StoreError) -> ReadBatch
    /// False while the peer is not taking the output it has.
    var canDeliver: Bool { get }
    /// True once this event's output not yet flushed is big enough to send:
    /// the delivery turn stops there and goes on in the next one.
    var outboundFull: Bool { get }
    /// Writes one message for a subscription; false when it does not fit
    /// the peer's limit (nothing written).
    func deliver(_ message: RoutedMessage, subscriptionID: UInt32) -> Bool
    func deliverReplayed(_ message: StoredMessage, subscriptionID: UInt32) -> Bool
    /// ``read(from:filter:maxMessages:maxBytes:)`` handing each message to
    /// `body` as the read finds it (``MessageLog/visit(from:filter:maxMessages:maxBytes:maxScan:_:)``).
    func visit(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int,
               _ body: (borrowing StoredRecord) -> Bool) throws(StoreError) -> ReadProgress
    /// Writes one replayed message straight from the read's record.
    func deliverReplayed(_ record: borrowing StoredRecord, subscriptionID: UInt32) -> Bool
    func run(_ action: SessionAction)
    func audit(_ event: String, _ fields: KeyValuePairs<String, any Sendable>)
}

/// The broker limits the session core applies.
struct SessionLimits: Equatable {
    var maxInFlightPublishes: Int
    var maxSubscriptions: Int
    var subscriptionBuffer: Int
    /// Durables one owner may hold (`[limits] max_durables`); a new name beyond it is `too_many_durables`.
    var maxDurables = 1_000
    /// PUBs per append handed to the log in the middle of a read burst.
    var appendSliceSize = 256
    /// MSG written per delivery turn before yielding to the event loop.
    var deliveryBudget = 8_192

    init(maxInFlightPublishes: Int, maxSubscriptions: Int, subscriptionBuffer: Int) {
        self.maxInFlightPublishes = maxInFlightPublishes
        self.maxSubscriptions = maxSubscriptions
        self.subscriptionBuffer = subscriptionBuffer
    }

    init(_ limits: BrokerConfiguration.Limits) {
        self.init(maxInFlightPublishes: limits.maxInFlightPublishes,
                  maxSubscriptions: limits.maxSubscriptionsPerConnection, subscriptionBuffer: limits.subscriptionBuffer)
        maxDurables = limits.maxDurablesPerOwner
    }
}

extension SessionEnvironment {
    /// Environments over a local log (the tests' recording ones) read inline.
    var readsWait: Bool { false }

    /// Environments that do not flush in chunks (the tests' recording ones).
    var outboundFull: Bool { false }

    /// Environments without a visiting read (the tests' recording ones)
    /// read a batch and hand its messages over one by one.
    func visit(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int,
               _ body: (borrowing StoredRecord) -> Bool) throws(StoreError) -> ReadProgress {
        try read(from: from, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes).visit(body)
    }

    /// ...and write it from the decoded message.
    func deliverReplayed(_ record: borrowing StoredRecord, subscriptionID: UInt32) -> Bool {
        guard let message = try? record.message() else { return false }
        return deliverReplayed(message, subscriptionID: subscriptionID)
    }
}
