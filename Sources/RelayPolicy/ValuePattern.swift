/// One accepted value in a `match` condition: an exact string or a glob.
///
/// `*` matches any run of bytes, including none (and including `.`, `/`,
/// `@`: it is not segment-aware). No other character is special, so a value
/// such as `a?b` or `[x]` matches only itself. Comparison is byte-wise on
/// UTF-8 and case-sensitive: Swift's `String ==` treats canonically
/// equivalent Unicode as equal, but two certificates whose names differ in
/// bytes must be two identities to policy.
public struct ValuePattern: Hashable, Sendable, CustomStringConvertible {
    /// The pattern as written in the configuration.
    public let source: String
    /// The pattern split at `*`: one part means no `*` (exact match).
    private let parts: [[UInt8]]

    public init(_ source: String) {
        self.source = source
        self.parts = source.utf8.split(separator: UInt8(ascii: "*"), omittingEmptySubsequences: false)
            .map(Array.init)
    }

    /// True when the pattern contains `*`.
    public var isGlob: Bool { parts.count > 1 }

    /// The literal text before the first `*` (the whole pattern when exact).
    /// Every value the pattern matches starts with exactly these bytes.
    var literalPrefix: String { String(decoding: parts.first ?? [], as: UTF8.self) }

    public var description: String { source }

    public func matches(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { matches(bytes: $0) }
    }

    /// Classic linear glob with `*` only: the first part anchors the start,
    /// the last anchors the end, middle parts are found leftmost-first.
    /// Leftmost-first is optimal for `*`-only globs, so no backtracking.
    func matches(bytes value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = parts.first, let last = parts.last else { return value.isEmpty }
        if parts.count == 1 { return value.elementsEqual(first) }
        guard value.count >= first.count + last.count,
              value.prefix(first.count).elementsEqual(first),
              value.suffix(last.count).elementsEqual(last) else { return false }
        var position = first.count
        let end = value.count - last.count
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let found = Self.find(part, in: value, from: position, to: end) else { return false }
            position = found + part.count
        }
        return true
    }

    private static func find(_ needle: [UInt8], in hay: UnsafeBufferPointer<UInt8>, from: Int, to end: Int) -> Int? {
        guard end - from >= needle.count else { return nil }
        var i = from
        while i + needle.count <= end {
            var j = 0
            while j < needle.count && hay[i + j] == needle[j] { j += 1 }
            if j == needle.count { return i }
            i += 1
        }
        return nil
    }
}
