import RelayCore
import RelayStore

/// What a SUB asks the log before it can open (Protocol/relay-v1.md §4.6):
/// a durable's committed cursor, else (a new durable name) how many durables
/// the owner holds, and where a new subscription starts. On a local log
/// these are microseconds and made inline; on a log whose reads wait on a
/// service (``RelayStore/MessageLog/readsWaitOnService``) relayd makes them on
/// a thread of its own while the session holds the frames behind the SUB
/// (``SessionStateMachine/startLookedUp(_:_:_:)``).
struct StartLookup: Sendable, Equatable {
    /// Nil: an ephemeral subscription (no cursor, no durable limit).
    var owner: DurableOwner?
    var durableName: String
    /// The session's principal: a schema-1 cursor was keyed by it.
    var principal: String
    var filter: TopicFilter
    var start: StartPosition
    /// `[limits] max_durables`: counting the owner's durables stops past it.
    var maxDurables: Int
}

/// The log's answer to a ``StartLookup``.
enum StartAnswer: Sendable, Equatable {
    /// The durable exists: its committed cursor and stored filter.
    case resumed(DurableCursor)
    /// A new durable name `owner` may not add: it holds `held` already.
    case overDurableLimit(held: Int, owner: DurableOwner)
    /// A new subscription: its first sequence, or nil to start after the
    /// watermark routing gives it (`latest`).
    case fresh(start: UInt64?)
    /// The look-ups were answered, but the shared log's tail, which live
    /// delivery needs, could not be opened (off the loop, ahead of routing).
    case liveDeliveryUnavailable(StoreError)

    /// Whether the SUB opens with this answer, as far as the log can tell
    /// (`filter`: the SUB's): not refused for its durable's stored filter,
    /// the durable limit, or live delivery.
    func opens(filter: TopicFilter) -> Bool {
        switch self {
        case .resumed(let cursor): return cursor.filter == nil || cursor.filter == filter.value
        case .fresh: return true
        case .overDurableLimit, .liveDeliveryUnavailable: return false
        }
    }
}

/// The three look-ups a ``StartLookup`` is made of, answered by the
/// session's environment (inline) or by ``BrokerStartLookups`` (off the loop).
protocol StartLookups {
    /// The committed cursor of a durable name and the filter stored with it.
    /// A cursor without a stored filter (a migrated one, or one recorded
    /// before filters were stored) adopts `filter`, the SUB's, and is
    /// returned with it (docs/storage.md, "Durable cursors").
    func resumeCursor(owner: DurableOwner, name: String, principal: String, filter: String) throws(StoreError) -> DurableCursor?
    /// How many durables `owner` holds besides `name` (stored cursors, and
    /// names attached or still committing), counted at least up to `limit` + 1.
    func durablesHeld(owner: DurableOwner, besides name: String, upTo limit: Int) throws(StoreError) -> Int
    func startSequence(_ start: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64
}

extension StartLookups {
    /// The look-ups in the spec's order (§4.6): the cursor of an existing
    /// durable; for a new name, the owner's durable limit; then the start.
    func lookUpStart(_ lookup: StartLookup) throws(StoreError) -> StartAnswer {
        if let owner = lookup.owner {
            if let resumed = try resumeCursor(owner: owner, name: lookup.durableName, principal: lookup.principal,
                                              filter: lookup.filter.value) {
                return .resumed(resumed)
            }
            // A new durable name: within the owner's `max_durables`. Re-attaching one it holds never comes here.
            let held = try durablesHeld(owner: owner, besides: lookup.durableName, upTo: lookup.maxDurables)
            if held >= lookup.maxDurables { return .overDurableLimit(held: held, owner: owner) }
        }
        switch lookup.start {
        case .latest: return .fresh(start: nil)
        case .sequence(let sequence): return .fresh(start: sequence)  // at least 1: checked by the wire layer
        case .time, .earliest, .last: return .fresh(start: try startSequence(lookup.start, filter: lookup.filter))
        }
    }
}

/// A SUB whose look-ups are being made off the loop: what it needs to open
/// when they are answered. The session reads no other request meanwhile.
struct PendingSubscription {
    var id: UInt32
    var request: SubscribeRequest
    /// Set for a durable: its name is claimed and must be released if the SUB does not open.
    var owner: DurableOwner?
}
