@testable import RelayCore

/// The topic grammar as it was at b177363 (RelayCore/Topic.swift), copied
/// verbatim so TopicGrammarPinTests can compare the optimised validator
/// against it. Do not "fix" this copy: it is the reference behaviour.
enum ReferenceTopicGrammar {
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    static func validate<Bytes: Collection>(_ bytes: Bytes, allowWildcards: Bool) throws(TopicError)
    where Bytes.Element == UInt8 {
        let count = bytes.count
        if count == 0 { throw .empty }
        if count > Topic.maxLength { throw .tooLong(length: count) }
        var tokenIndex = 0
        var tokenLength = 0
        var tokenWildcard: UInt8 = 0
        var offset = 0
        for b in bytes {
            if b == UInt8(ascii: ".") {
                if tokenLength == 0 { throw .emptyToken(index: tokenIndex) }
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

    /// The reference verdict as a value, so tables and generated cases compare with `==`.
    static func verdict<Bytes: Collection>(_ bytes: Bytes, allowWildcards: Bool) -> TopicError?
    where Bytes.Element == UInt8 {
        do { try validate(bytes, allowWildcards: allowWildcards); return nil } catch { return error }
    }

    /// The old split: tokens are the bytes between dots, empty ones kept.
    static func tokens(_ s: String) -> [Substring] {
        s.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map { Substring($0) }
    }
}
