import RelayCore

/// Routes a topic to the subscriptions whose filters match it.
///
/// One trie level per topic token, with dedicated children for `*` and `>`
/// (the shape of nats-server's sublist), plus a bounded cache of recent
/// topic → matches results. Inserting or removing a literal filter drops
/// only that topic from the cache; a wildcard filter drops the whole cache,
/// which the next publishes refill. Testing each cached topic against the
/// wildcard instead (the precise way) split up to 4,096 topics under the
/// router's lock for every SUB or UNSUB: a client looping `SUB a.*` / UNSUB
/// held the lock for most of the time and cut an innocent publisher's
/// throughput (docs/testing.md, "Cheap requests, expensive broker").
///
/// The cache is bounded twice: at most `cacheLimit` topics, and at most
/// `cacheBudget` subscribers in all its lists together. A bound on topics
/// alone let one client with a wildcard grant fill it with 4,096 topics,
/// each listing its thousands of subscriptions (3,001 × 4,096 lists: +382
/// MiB in relayd, `RouterCacheBoundTests`); a list longer than the budget
/// is not kept at all.
///
/// Not thread-safe: the ``Router`` owns one behind its lock. Its nodes are
/// classes, so a copy of the struct shares them: never copy a trie (the
/// router never does), which is also why the Sendable conformance is
/// unchecked — every access goes through the router's lock.
struct SubscriptionTrie<Subscriber: Hashable>: @unchecked Sendable {
    private final class Node {
        var literal: [Substring: Node] = [:]
        var anyOne: Node?
        var anyRest: Node?
        /// Subscribers whose filter ends at this node.
        var here: Set<Subscriber> = []
        /// Subscribers whose filter ends with `>` at this node's level.
        var rest: Set<Subscriber> = []

        var isEmpty: Bool {
            literal.isEmpty && anyOne == nil && anyRest == nil && here.isEmpty && rest.isEmpty
        }
    }

    private let root = Node()
    private var cache: [String: [Subscriber]] = [:]
    private let cacheLimit: Int
    private let cacheBudget: Int
    /// Subscribers in all of the cache's lists together (at most `cacheBudget`).
    private(set) var cachedSubscribers = 0
    private(set) var count = 0

    /// - Parameters:
    ///   - cacheLimit: topics cached at most.
    ///   - cacheBudget: subscribers held by the cached lists together at
    ///     most (262,144: about 6 MiB of router keys).
    init(cacheLimit: Int = 4096, cacheBudget: Int = 1 << 18) {
        self.cacheLimit = cacheLimit
        self.cacheBudget = cacheBudget
    }

    /// Adds `subscriber` under `filter`. Returns false if it was already there.
    @discardableResult
    mutating func insert(_ filter: TopicFilter, _ subscriber: Subscriber) -> Bool {
        var node = root
        for token in filter.tokens {
            switch token {
            case .literal(let name):
                if let next = node.literal[name] {
                    node = next
                } else {
                    let next = Node()
                    node.literal[name] = next
                    node = next
                }
            case .anyOne:
                if node.anyOne == nil { node.anyOne = Node() }
                node = node.anyOne ?? node
            case .anyRest:
                let inserted = node.rest.insert(subscriber).inserted
                if inserted { count += 1; didChange(filter) }
                return inserted
            }
        }
        let inserted = node.here.insert(subscriber).inserted
        if inserted { count += 1; didChange(filter) }
        return inserted
    }

    /// Removes `subscriber` from `filter`. Returns false if it was not there.
    @discardableResult
    mutating func remove(_ filter: TopicFilter, _ subscriber: Subscriber) -> Bool {
        let removed = Self.remove(filter.tokens[...], subscriber, from: root)
        if removed { count -= 1; didChange(filter) }
        return removed
    }

    /// Every subscriber whose filter matches `topic`, each once.
    mutating func match(_ topic: String) -> [Subscriber] {
        if let hit = cache[topic] { return hit }
        var result = Set<Subscriber>()
        let tokens = topic.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map { Substring($0) }
        Self.collect(tokens[...], node: root, into: &result)
        let matches = Array(result)
        guard matches.count <= cacheBudget else { return matches }  // too wide to keep
        if cache.count >= cacheLimit || cachedSubscribers + matches.count > cacheBudget {
            cache.removeAll(keepingCapacity: true)
            cachedSubscribers = 0
        }
        cache[topic] = matches
        cachedSubscribers += matches.count
        return matches
    }

    private mutating func didChange(_ filter: TopicFilter) {
        if cache.isEmpty { return }
        if filter.isLiteral {
            cachedSubscribers -= cache.removeValue(forKey: filter.value)?.count ?? 0
        } else {
            // Each entry dropped was made by one publish's match: the cost is
            // the publishers', not a multiple of the SUB's.
            cache.removeAll(keepingCapacity: true)
            cachedSubscribers = 0
        }
    }

    private static func collect(_ tokens: ArraySlice<Substring>, node: Node, into result: inout Set<Subscriber>) {
        guard let first = tokens.first else {
            result.formUnion(node.here)
            return
        }
        // `>` at this level needs at least one remaining token, which we have.
        result.formUnion(node.rest)
        let remaining = tokens.dropFirst()
        if let next = node.literal[first] { collect(remaining, node: next, into: &result) }
        if let next = node.anyOne { collect(remaining, node: next, into: &result) }
    }

    /// Removes and prunes empty nodes on the way back up.
    private static func remove(_ tokens: ArraySlice<TopicFilter.Token>, _ subscriber: Subscriber, from node: Node) -> Bool {
        guard let first = tokens.first else { return node.here.remove(subscriber) != nil }
        let remaining = tokens.dropFirst()
        switch first {
        case .anyRest:
            return node.rest.remove(subscriber) != nil
        case .anyOne:
            guard let child = node.anyOne else { return false }
            let removed = remove(remaining, subscriber, from: child)
            if child.isEmpty { node.anyOne = nil }
            return removed
        case .literal(let name):
            guard let child = node.literal[name] else { return false }
            let removed = remove(remaining, subscriber, from: child)
            if child.isEmpty { node.literal[name] = nil }
            return removed
        }
    }
}
