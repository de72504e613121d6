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
enum TopicGrammar {
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// Validates in one pass over the bytes, without allocating.
    static func validate<Bytes: Collection>(_ bytes: Bytes, allowWildcards: Bool) throws(TopicError)
    where Bytes.Element == UInt8 {
        let count = bytes.count
        if count == 0 { throw .empty }
        if count > Topic.maxLength { throw .tooLong(length: count) }
        var tokenIndex = 0
        var tokenLength = 0
        var tokenWildcard: UInt8 = 0  // the wildcard byte when the token so far is one, else 0
        var offset = 0
        for b in bytes {
            if b == UInt8(ascii: ".") {
                if tokenLength == 0 { throw .emptyToken(index: tokenIndex) }
                // `>` matches the rest, so no token may follow it.
                if tokenWildcard == UInt8(ascii: ">") { throw .misplacedWildcard(index: tokenIndex) }
                tokenIndex += 1
                if tokenIndex >= Topic.maxTokens { throw .tooManyTokens(count: tokenIndex + 1) }
                tokenLength = 0
                tokenWildcard = 0
            } else if b == UInt8(ascii: "*") || b == UInt8(ascii: ">") {
                if !allowWildcards { throw .wildcardInTopic(index: tokenIndex) }
                if tokenLength != 0 { throw .misplacedWildcard(index: tokenIndex) }
                tokenWildcard = b
                tokenLength += 1
            } else if isTokenByte(b) {
                if tokenWildcard != 0 { throw .misplacedWildcard(index: tokenIndex) }
                tokenLength += 1
            } else {
                throw .invalidCharacter(byte: b, index: offset)
            }
            offset += 1
        }
        if tokenLength == 0 { throw .emptyToken(index: tokenIndex) }
    }
}
