import RelayStore

/// The durable names attached to a session, or claimed by an admin
/// deletion: the registry behind SUBACK `durable_in_use`
/// (Protocol/relay-v1.md §4.6, §4.10). Kept in ``BrokerContext``'s locked state.
///
/// A subscription that ends with a cursor to commit keeps its name claimed
/// until that commit is done, so no connection resumes from an older
/// cursor. The connection that detached it may attach it again meanwhile
/// (UNSUB, then SUB of the name, as §4.8 allows for ids): it resumes at the
/// cursor being committed, which is known here, instead of being refused
/// `durable_in_use` for a name no other connection holds.
struct DurableClaims {
    struct Key: Hashable {
        var owner: DurableOwner
        var name: String
    }

    enum Outcome: Equatable {
        case claimed
        /// The claimer's own detach is still committing this cursor: resume after it.
        case reattached(DurableCursor)
        case inUse
    }

    private struct Claim {
        /// The connection holding it (``SessionIO/connectionID``); nil for an admin operation.
        var holder: UInt64?
        var attached: Bool
        /// The detach whose cursor commit is still on the store's writer.
        var pending: (detach: UInt64, cursor: DurableCursor)?
    }

    private var claims: [Key: Claim] = [:]
    /// The claimed names of each owner, kept with `claims` by ``set(_:_:)``:
    /// counted for `[limits] max_durables` without walking every claim.
    private var byOwner: [DurableOwner: Set<String>] = [:]
    private var detaches: UInt64 = 0

    /// The names of `owner` attached to a session or still committing a cursor.
    func names(of owner: DurableOwner) -> Set<String> { byOwner[owner] ?? [] }

    /// Every durable attached to a session now.
    var attached: [Key] { claims.compactMap { $0.value.attached && $0.value.holder != nil ? $0.key : nil } }

    private mutating func set(_ key: Key, _ claim: Claim?) {
        claims[key] = claim
        if claim != nil {
            byOwner[key.owner, default: []].insert(key.name)
        } else if var names = byOwner[key.owner] {
            names.remove(key.name)
            byOwner[key.owner] = names.isEmpty ? nil : names
        }
    }

    mutating func claim(_ key: Key, by holder: UInt64?) -> Outcome {
        guard var claim = claims[key] else {
            set(key, Claim(holder: holder, attached: true))
            return .claimed
        }
        guard !claim.attached, let holder, claim.holder == holder, let pending = claim.pending else { return .inUse }
        claim.attached = true
        set(key, claim)
        return .reattached(pending.cursor)
    }

    /// A subscription ended with `cursor` to commit. The name stays claimed
    /// until ``committed(_:detach:)`` with the returned token.
    mutating func detaching(_ key: Key, cursor: DurableCursor) -> UInt64 {
        detaches &+= 1
        var claim = claims[key] ?? Claim(holder: nil, attached: false)
        claim.attached = false
        claim.pending = (detaches, cursor)
        set(key, claim)
        return detaches
    }

    /// The cursor of `detach` is committed: the name is free, unless its
    /// connection attached it again (or a later detach is still pending).
    mutating func committed(_ key: Key, detach: UInt64) {
        guard var claim = claims[key], claim.pending?.detach == detach else { return }
        guard claim.attached else {
            set(key, nil)
            return
        }
        claim.pending = nil
        set(key, claim)
    }

    /// Lets go of a name with no cursor to commit; a name whose earlier
    /// detach is still committing stays claimed until that commit is done.
    mutating func release(_ key: Key) {
        guard var claim = claims[key] else { return }
        guard claim.pending != nil else {
            set(key, nil)
            return
        }
        claim.attached = false
        set(key, claim)
    }
}
