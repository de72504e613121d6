/// A subscription filter: a topic whose tokens may also be `*` (exactly one
/// token) or, as the last token only, `>` (one or more tokens).
///
/// Besides matching topics, filters can be compared with each other, which
/// is what policy needs: a subscription is allowed only if it is a subset of
/// an allowed filter and intersects no denied one.
public struct TopicFilter: Hashable, Sendable, CustomStringConvertible {
    public enum Token: Hashable, Sendable {
        case literal(Substring)
        case anyOne       // `*`
        case anyRest      // `>`
    }

    /// The filter as written.
    public let value: String
    /// The parsed tokens; `.anyRest` can only be last.
    public let tokens: [Token]

    public init(_ value: String) throws(TopicError) {
        try TopicGrammar.validate(value.utf8, allowWildcards: true)
        self.value = value
        self.tokens = value.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map { Substring($0) }.map { token in
            switch token {
            case "*": return .anyOne
            case ">": return .anyRest
            default: return .literal(token)
            }
        }
    }

    /// A filter that matches exactly one topic.
    public init(exactly topic: Topic) {
        self.value = topic.value
        self.tokens = topic.tokens.map { .literal($0) }
    }

    /// True when the filter contains no wildcard.
    public var isLiteral: Bool {
        tokens.allSatisfy { if case .literal = $0 { return true } else { return false } }
    }

    /// Does this filter match the concrete `topic`?
    public func matches(_ topic: Topic) -> Bool {
        matches(tokens: topic.tokens)
    }

    /// Matching on already split topic tokens (the broker splits a topic once).
    @inlinable
    public func matches<S: Sequence>(tokens topicTokens: S) -> Bool where S.Element == Substring {
        var iterator = topicTokens.makeIterator()
        for token in tokens {
            switch token {
            case .anyRest:
                return iterator.next() != nil
            case .anyOne:
                if iterator.next() == nil { return false }
            case .literal(let literal):
                guard let next = iterator.next(), next == literal else { return false }
            }
        }
        return iterator.next() == nil
    }

    /// Matching on a topic's UTF-8 bytes (valid topic grammar), without
    /// building Strings: the store tests the topic of every record a
    /// wildcard replay scans this way, so it compares bytes in place.
    @inlinable
    public func matches(utf8 bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        let dot = UInt8(ascii: ".")
        // `position` is where the next topic token starts; n + 1 once none is left.
        var position = 0
        for token in tokens {
            if position > n { return false }
            if case .anyRest = token { return true }
            var end = position
            while end < n && bytes[end] != dot { end += 1 }
            if case .literal(let literal) = token {
                let start = position, length = end - position
                let equal = literal.utf8.withContiguousStorageIfAvailable { (literal) -> Bool in
                    guard literal.count == length else { return false }
                    var i = 0
                    while i < length {
                        if literal[i] != bytes[start + i] { return false }
                        i += 1
                    }
                    return true
                } ?? literal.utf8.elementsEqual(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                guard equal else { return false }
            }
            position = end + 1
        }
        return position > n
    }

    /// True when every topic this filter matches is also matched by `other`.
    public func isSubset(of other: TopicFilter) -> Bool {
        let mine = tokens, theirs = other.tokens
        var i = 0
        while i < theirs.count {
            guard i < mine.count else { return false }
            switch (mine[i], theirs[i]) {
            case (_, .anyRest):
                return true                    // theirs takes the rest; mine has ≥ 1 token left
            case (.anyRest, _):
                return false                   // mine matches arbitrarily long topics, theirs does not
            case (_, .anyOne):
                break                          // one token of anything covers a literal or `*`
            case (.anyOne, .literal):
                return false
            case (.literal(let a), .literal(let b)):
                if a != b { return false }
            }
            i += 1
        }
        return i == mine.count
    }

    /// True when at least one topic is matched by both filters.
    public func intersects(_ other: TopicFilter) -> Bool {
        let a = tokens, b = other.tokens
        var i = 0
        while i < a.count && i < b.count {
            switch (a[i], b[i]) {
            case (.anyRest, _), (_, .anyRest):
                return true
            case (.anyOne, _), (_, .anyOne):
                break
            case (.literal(let x), .literal(let y)):
                if x != y { return false }
            }
            i += 1
        }
        return a.count == b.count
    }

    public var description: String { value }
}
