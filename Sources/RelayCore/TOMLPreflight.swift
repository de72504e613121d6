/// Refuses the TOML constructs that make TOMLKit's parser abort the
/// process, before the text reaches it.
///
/// Why: toml++ 3 (inside TOMLKit 0.6.0) checks some of its preconditions
/// with `assert`, which SwiftPM builds keep, so certain malformed documents
/// abort the whole process instead of producing a parse error. relayd parses
/// its config at start and on every SIGHUP reload, so one typo would kill a
/// running broker. Found by Fuzz/run-config-parser.sh:
/// - a table header whose key starts with anything but a bare-key character
///   or a quote (`[!]`, `[é]`, `[ #]`): `parse_table_header` asserts;
/// - `}` where an array expects a value (`x = [}`): `parse_array` asserts;
/// - a malformed date or time (`x = 1979-05-27TM-7:32:00Z`): `parse_time`
///   asserts.
/// The first two are invalid TOML. For the third, unquoted values are held
/// to what relayd's config uses (`true`, `false`, decimal integers): no key
/// takes a float, date or time, so a valid config is never refused, and
/// toml++'s float and date-time parsers never see relayd's input.
/// The scan skips strings (all four kinds) and comments, and tracks arrays
/// and inline tables over several lines, so look-alikes inside them pass.
public enum TOMLPreflight {
    public struct Problem: Equatable, Sendable {
        /// 1-based.
        public var line: Int
        public var message: String
    }

    /// The first construct toml++ would abort on, or nil when there is none.
    public static func problem(in text: String) -> Problem? {
        let s = Array(text.unicodeScalars)
        var i = 0, line = 1
        var open: [Unicode.Scalar] = []  // "[" and "{" of values, innermost last
        var atLineStart = true
        var expectsValue = false  // after "=", or in an array
        func at(_ offset: Int, _ c: Unicode.Scalar) -> Bool { i + offset < s.count && s[i + offset] == c }
        func skipToLineEnd() { while i < s.count && s[i] != "\n" { i += 1 } }
        while i < s.count {
            let c = s[i]
            switch c {
            case "\n":
                line += 1
                atLineStart = true
                if open.isEmpty { expectsValue = false }
                i += 1
                continue
            case " ", "\t", "\r":
                i += 1
                continue
            case "[" where atLineStart && open.isEmpty:
                i += at(1, "[") ? 2 : 1
                while at(0, " ") || at(0, "\t") { i += 1 }
                guard i < s.count, isKeyStart(s[i]) else {
                    return Problem(line: line, message: "a table header must start with a letter, digit, '_', '-' or a quote, e.g. [tls] or [[acl.rule]]")
                }
                skipToLineEnd()  // a header fits on its line
                continue
            case "#":
                skipToLineEnd()
                continue
            case "\"", "'":
                let multiLine = at(1, c) && at(2, c)
                i += multiLine ? 3 : 1
                while i < s.count {
                    if c == "\"" && s[i] == "\\" { i += 2; continue }  // basic strings escape
                    if multiLine && at(0, c) && at(1, c) && at(2, c) {
                        i += 3
                        while at(0, c) { i += 1 }  // up to two quotes may end the content
                        break
                    }
                    if !multiLine && s[i] == c { i += 1; break }
                    if !multiLine && s[i] == "\n" { break }  // unterminated: toml++ reports it
                    if s[i] == "\n" { line += 1 }
                    i += 1
                }
                atLineStart = false
                expectsValue = false
                continue
            case "=":
                expectsValue = true
            case "[":
                open.append(c)
                expectsValue = true
            case "{":
                open.append(c)
                expectsValue = false  // a key comes first
            case ",":
                expectsValue = open.last == "["
            case "]":
                _ = open.popLast()
                expectsValue = false
            case "}":
                if open.last == "[" {
                    return Problem(line: line, message: "'}' inside an array; close the array with ']' first")
                }
                _ = open.popLast()
                expectsValue = false
            default:
                // A bare token: a key, or an unquoted value.
                let start = i
                while i < s.count && !isTokenEnd(s[i]) { i += 1 }
                let token = String(String.UnicodeScalarView(s[start..<i]))
                if expectsValue && !isPlainValue(token) {
                    return Problem(line: line, message: "unquoted value '\(token.prefix(40))' is not true, false or a decimal integer; relayd's config takes no float, date or time (quote text, e.g. \"5s\")")
                }
                atLineStart = false
                expectsValue = false
                continue
            }
            atLineStart = false
            i += 1
        }
        return nil
    }

    /// What toml++ accepts first in a key: A-Z a-z 0-9 _ - or a quote.
    private static func isKeyStart(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "A"..."Z", "a"..."z", "0"..."9", "_", "-", "\"", "'": return true
        default: return false
        }
    }

    private static func isTokenEnd(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case " ", "\t", "\r", "\n", ",", "[", "]", "{", "}", "#", "=", "\"", "'": return true
        default: return false
        }
    }

    /// `true`, `false`, or a TOML decimal integer (`42`, `-7`, `1_000`).
    private static func isPlainValue(_ token: String) -> Bool {
        if token == "true" || token == "false" { return true }
        var digits = Substring(token)
        if digits.first == "+" || digits.first == "-" { digits = digits.dropFirst() }
        guard let first = digits.first, first.isASCII, first.isNumber else { return false }
        if first == "0" { return digits.count == 1 }
        var previousUnderscore = false
        for character in digits {
            if character == "_" {
                if previousUnderscore { return false }
                previousUnderscore = true
            } else if character.isASCII && character.isNumber {
                previousUnderscore = false
            } else {
                return false
            }
        }
        return !previousUnderscore
    }
}
