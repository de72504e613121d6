import RelayCore

/// A topic filter from a rule's `publish`, `subscribe`, `deny_publish` or
/// `deny_subscribe` list, possibly holding `{attribute}` templates.
///
/// A template is always one whole token (`orders.{subject.OU}.>`); a token
/// such as `a{subject.CN}b` is refused at load, because splicing a value into
/// part of a token is how CVE-2017-7650-style widening starts.
public struct FilterTemplate: Sendable, Hashable, CustomStringConvertible {
    enum Token: Sendable, Hashable {
        case literal(String)
        case template(AttributeKey)
    }

    /// The filter as written in the configuration.
    public let source: String
    let tokens: [Token]
    /// The parsed filter when there is no template: expansion is then free.
    let staticFilter: TopicFilter?

    public var description: String { source }
    public var isTemplated: Bool { staticFilter == nil }

    /// Parses and validates; the error is a sentence for the operator.
    init(_ source: String) throws(AttributeKey.KeyError) {
        var tokens: [Token] = []
        var shape: [String] = []   // the filter with every template replaced by a literal
        for text in Self.splitTokens(source) {
            guard text.contains("{") || text.contains("}") else {
                tokens.append(.literal(text))
                shape.append(text)
                continue
            }
            let inner = text.dropFirst().dropLast()
            guard text.count >= 3, text.hasPrefix("{"), text.hasSuffix("}"),
                  !inner.contains("{"), !inner.contains("}") else {
                throw .init("'\(text)' in filter '\(source)': a template must be a whole token such as {subject.CN}, never part of one")
            }
            tokens.append(.template(try AttributeKey.parse(String(inner), for: .filterTemplate)))
            shape.append("x")
        }
        do {
            _ = try TopicFilter(shape.joined(separator: "."))
        } catch {
            throw .init("filter '\(source)' is not a valid topic filter: \(error)")
        }
        self.source = source
        self.tokens = tokens
        self.staticFilter = tokens.contains { if case .template = $0 { true } else { false } }
            ? nil : try? TopicFilter(source)
    }

    /// Splits at the dots outside `{…}`: template keys contain dots
    /// themselves (`{subject.CN}`). Unbalanced braces stay inside a token,
    /// where the whole-token check refuses them.
    static func splitTokens(_ source: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        var depth = 0
        for character in source {
            switch character {
            case "{": depth += 1
            case "}": depth = max(0, depth - 1)
            case "." where depth == 0:
                tokens.append(current)
                current = ""
                continue
            default: break
            }
            current.append(character)
        }
        tokens.append(current)
        return tokens
    }

    /// Why `value` may not be substituted for a template, or nil when it is
    /// exactly one valid topic token. Uses RelayCore's topic grammar, so
    /// policy and the wire agree on what a token is.
    static func tokenProblem(_ value: String) -> String? {
        if value.isEmpty { return "value is empty" }
        if let scalar = DisplayText.firstUnsafe(value) {
            return "value contains \(DisplayText.codePoint(scalar)), a control or Unicode format character (such as a bidi override), which never becomes a topic token"
        }
        if value.utf8.contains(UInt8(ascii: ".")) {
            return "value contains '.', which would make it several topic tokens"
        }
        do {
            _ = try Topic(value)
            return nil
        } catch {
            switch error {
            case .wildcardInTopic:
                return "value contains a wildcard ('*' or '>')"
            case .invalidCharacter(let byte, _):
                return "value contains \(describe(byte: byte)), outside the token grammar A-Z a-z 0-9 _ -"
            default:
                return "value is not one topic token: \(error)"
            }
        }
    }

    private static func describe(byte: UInt8) -> String {
        switch byte {
        case 0x20: return "a space"
        case 0x00..<0x20, 0x7F: return "control character 0x\(String(byte, radix: 16, uppercase: true))"
        case 0x80...: return "a non-ASCII byte"
        default: return "'\(Character(Unicode.Scalar(byte)))'"
        }
    }
}
