/// A concrete topic a message is published to: dot-separated tokens.
///
/// Grammar (Protocol/relay-v1.md §Topics):
/// - 1 to ``Topic/maxTokens`` tokens separated by `.`;
/// - each token is 1 or more bytes of `[A-Za-z0-9_-]`;
/// - at most ``Topic/maxLength`` bytes in total.
///
/// Topics whose first token starts with `_` are reserved for the broker:
/// they are valid names, but clients may not publish to them
/// (``Topic/isReserved``).
public struct Topic: Hashable, Sendable, CustomStringConvertible {
    /// Maximum length of a topic or filter in bytes.
    public static let maxLength = 255
    /// Maximum number of tokens in a topic or filter.
    public static let maxTokens = 32

    /// The topic as sent on the wire.
    public let value: String

    /// Validates `value` and returns the topic, or throws the rule it breaks.
    public init(_ value: String) throws(TopicError) {
        try TopicGrammar.validate(value.utf8, allowWildcards: false)
        self.value = value
    }

    /// Validates raw wire bytes without first building a String.
    public init<Bytes: Collection>(utf8 bytes: Bytes) throws(TopicError) where Bytes.Element == UInt8 {
        try TopicGrammar.validate(bytes, allowWildcards: false)
        // Safe: validation admitted ASCII only.
        self.value = String(decoding: bytes, as: UTF8.self)
    }

    /// The dot-separated tokens. Splits on UTF-8 bytes (topics are ASCII),
    /// which is several times faster than splitting by Character.
    public var tokens: [Substring] {
        value.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map { Substring($0) }
    }

    /// True when the first token starts with `_`: reserved for the broker.
    public var isReserved: Bool { value.utf8.first == UInt8(ascii: "_") }

    public var description: String { value }
}

/// Why a topic or filter was refused. Each case names the rule broken.
public enum TopicError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case tooLong(length: Int)
    case tooManyTokens(count: Int)
    case emptyToken(index: Int)
    case invalidCharacter(byte: UInt8, index: Int)
    /// `*` or `>` inside a topic that is published to.
    case wildcardInTopic(index: Int)
    /// `>` anywhere but the last token, or a wildcard mixed with other characters.
    case misplacedWildcard(index: Int)

    public var description: String {
        switch self {
        case .empty: return "topic is empty"
        case .tooLong(let n): return "topic is \(n) bytes long; the maximum is \(Topic.maxLength)"
        case .tooManyTokens(let n): return "topic has \(n) tokens; the maximum is \(Topic.maxTokens)"
        case .emptyToken(let i): return "token \(i + 1) is empty (two dots in a row, or a leading or trailing dot)"
        case .invalidCharacter(let b, let i):
            return "byte 0x\(String(b, radix: 16)) at offset \(i) is not allowed; tokens use A-Z a-z 0-9 _ -"
        case .wildcardInTopic(let i): return "token \(i + 1) is a wildcard; a published topic must be concrete"
        case .misplacedWildcard(let i):
            return "token \(i + 1): '*' and '>' must be whole tokens, and '>' must be the last token"
        }
    }
}

/// The one implementation of the topic grammar, shared by topics and filters.
///
/// It runs once per PUBLISH (issue 19: 1,747 instructions per message, ~60
/// per byte, when it iterated `String.UTF8View` generically), so it scans a
/// contiguous buffer with a tight loop over token bytes and a bit-mask class
/// test. The verdicts (rule and index) are pinned by TopicGrammarPinTests
/// against the previous implementation.
enum TopicGrammar {
    /// `[A-Za-z0-9_-]` as a bit set: bit `b` of `low` for bytes 0-63, bit
    /// `b - 64` of `high` for bytes 64-127; no byte >= 128 is a token byte.
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        let low: UInt64 = 0x03FF_2000_0000_0000   // '-' (45), '0'-'9' (48-57)
        let high: UInt64 = 0x07FF_FFFE_87FF_FFFE  // 'A'-'Z' (65-90), '_' (95), 'a'-'z' (97-122)
        let mask = b < 64 ? low : high
        return b < 128 && (mask >> UInt64(b & 63)) & 1 != 0
    }

    /// Validates in one pass over the bytes, without allocating when the
    /// bytes are contiguous (Strings, arrays, buffers: every caller).
    @inline(__always)
    static func validate<Bytes: Collection>(_ bytes: Bytes, allowWildcards: Bool) throws(TopicError)
    where Bytes.Element == UInt8 {
        // The buffer lives only for the closure, and `scan` keeps nothing of it.
        let verdict = bytes.withContiguousStorageIfAvailable { scan($0, allowWildcards: allowWildcards) }
            ?? scan(Array(bytes), allowWildcards: allowWildcards)
        if let error = verdict { throw error }
    }

    /// The grammar's verdict on `bytes`: nil when valid, else the first rule broken.
    static func scan<Bytes: RandomAccessCollection>(_ bytes: Bytes, allowWildcards: Bool) -> TopicError?
    where Bytes.Element == UInt8, Bytes.Index == Int {
        let count = bytes.count
        if count == 0 { return .empty }
        if count > Topic.maxLength { return .tooLong(length: count) }
        let dot = UInt8(ascii: "."), star = UInt8(ascii: "*"), rest = UInt8(ascii: ">")
        var i = bytes.startIndex
        let end = bytes.endIndex
        var tokenIndex = 0
        var tokenStart = i
        while true {
            // The hot loop: the bytes of a literal token.
            while i < end && isTokenByte(bytes[i]) { i += 1 }
            if i == end { return i == tokenStart ? .emptyToken(index: tokenIndex) : nil }
            let b = bytes[i]
            if b == dot {
                if i == tokenStart { return .emptyToken(index: tokenIndex) }
                tokenIndex += 1
                if tokenIndex >= Topic.maxTokens { return .tooManyTokens(count: tokenIndex + 1) }
                i += 1
                tokenStart = i
            } else if b == star || b == rest {
                if !allowWildcards { return .wildcardInTopic(index: tokenIndex) }
                if i != tokenStart { return .misplacedWildcard(index: tokenIndex) }
                // A wildcard is a whole token: the next byte must end it.
                i += 1
                if i == end { return nil }
                let next = bytes[i]
                if next == dot {
                    // `>` matches the rest, so no token may follow it.
                    if b == rest { return .misplacedWildcard(index: tokenIndex) }
                } else if next == star || next == rest || isTokenByte(next) {
                    return .misplacedWildcard(index: tokenIndex)
                } else {
                    return .invalidCharacter(byte: next, index: i - bytes.startIndex)
                }
            } else {
                return .invalidCharacter(byte: b, index: i - bytes.startIndex)
            }
        }
    }
}
