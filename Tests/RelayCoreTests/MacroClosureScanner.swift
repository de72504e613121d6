// Finds closure literals written inside a `#expect`/`#require` argument that
// is itself inside a closure body. Swift 6.3.1 gives such a closure a
// discriminator that can equal a later closure literal's of the same type in
// the same enclosing closure, and SILGen then emits the first closure for both
// call sites: the later call silently runs the macro argument's closure (see
// docs/testing.md, "A toolchain trap"). Reproducer: /work/notes/closure-repro.
//
// A small tokenizer, not a parser: it knows comments, string literals
// (multi-line, raw, interpolation) and balanced brackets, and decides whether
// a `{` opens a closure or a declaration/statement body from the tokens of its
// statement head. When unsure it calls the brace a closure, so a doubtful
// `#expect` is flagged (a false positive costs one hoisted `let`; a missed one
// can make a check test the wrong thing).

struct MacroClosureSite: Equatable, CustomStringConvertible {
    /// 1-based line of the `#expect`/`#require`.
    let macroLine: Int
    /// 1-based line of the closure literal's `{`.
    let closureLine: Int
    let macro: String
    var description: String { "\(macro) at line \(macroLine) (closure literal at line \(closureLine))" }
}

enum MacroClosureScanner {
    struct Token {
        enum Kind { case word, punct, stringPiece, interpolationOpen }
        let kind: Kind
        let text: String
        let line: Int
        /// A line break between the previous token and this one.
        let newlineBefore: Bool
    }

    static func sites(in source: String) -> [MacroClosureSite] {
        analyse(tokenize(Array(source.unicodeScalars)))
    }

    // MARK: Tokenizer

    static func tokenize(_ s: [Unicode.Scalar]) -> [Token] {
        var tokens: [Token] = []
        var i = 0, line = 1, sawNewline = false
        // One entry per open string interpolation: the paren depth inside it,
        // and how to resume the string it interrupted.
        var interpolations: [(depth: Int, hashes: Int, multiline: Bool)] = []
        func emit(_ kind: Token.Kind, _ text: String) {
            tokens.append(Token(kind: kind, text: text, line: line, newlineBefore: sawNewline))
            sawNewline = false
        }
        func at(_ k: Int) -> Unicode.Scalar? { k < s.count ? s[k] : nil }
        func isIdent(_ c: Unicode.Scalar) -> Bool {
            c == "_" || c == "$" || c == "#" || c == "@" || (c.properties.isAlphabetic) || ("0"..."9").contains(c)
        }
        // Reads string text from `i` up to the closing delimiter or an
        // interpolation; returns true if it stopped at an interpolation.
        func readString(hashes: Int, multiline: Bool) -> Bool {
            let quote = multiline ? 3 : 1
            while i < s.count {
                let c = s[i]
                if c == "\n" { line += 1 }
                if c == "\\" {
                    var k = i + 1, h = 0
                    while h < hashes, at(k) == "#" { k += 1; h += 1 }
                    if h == hashes {
                        if at(k) == "(" {
                            i = k + 1
                            emit(.interpolationOpen, "\\(")
                            interpolations.append((depth: 0, hashes: hashes, multiline: multiline))
                            return true
                        }
                        i = k + 1 // an escape: skip the escaped scalar
                        continue
                    }
                }
                if c == "\"" {
                    var k = i, q = 0
                    while q < quote, at(k) == "\"" { k += 1; q += 1 }
                    var h = 0
                    while q == quote, h < hashes, at(k) == "#" { k += 1; h += 1 }
                    if q == quote, h == hashes { i = k; emit(.stringPiece, "\""); return false }
                }
                i += 1
            }
            return false
        }
        while i < s.count {
            let c = s[i]
            if c == "\n" { line += 1; sawNewline = true; i += 1; continue }
            if c == " " || c == "\t" || c == "\r" { i += 1; continue }
            if c == "/", at(i + 1) == "/" {
                while i < s.count, s[i] != "\n" { i += 1 }
                continue
            }
            if c == "/", at(i + 1) == "*" {
                var depth = 0
                repeat {
                    if s[i] == "/", at(i + 1) == "*" { depth += 1; i += 2; continue }
                    if s[i] == "*", at(i + 1) == "/" { depth -= 1; i += 2; continue }
                    if s[i] == "\n" { line += 1; sawNewline = true }
                    i += 1
                } while i < s.count && depth > 0
                continue
            }
            // String literal, optionally raw (#"..."#) and/or multi-line.
            var hashes = 0
            while at(i + hashes) == "#" { hashes += 1 }
            if at(i + hashes) == "\"" {
                i += hashes
                let multiline = at(i + 1) == "\"" && at(i + 2) == "\""
                i += multiline ? 3 : 1
                _ = readString(hashes: hashes, multiline: multiline)
                continue
            }
            if c == ")", var top = interpolations.last {
                if top.depth == 0 {
                    interpolations.removeLast()
                    i += 1
                    emit(.punct, ")")
                    _ = readString(hashes: top.hashes, multiline: top.multiline)
                    continue
                }
                top.depth -= 1
                interpolations[interpolations.count - 1] = top
            }
            if c == "(", !interpolations.isEmpty { interpolations[interpolations.count - 1].depth += 1 }
            if isIdent(c) {
                var k = i + 1
                while k < s.count, isIdent(s[k]) { k += 1 }
                emit(.word, String(String.UnicodeScalarView(s[i..<k])))
                i = k
                continue
            }
            let operators: Set<Unicode.Scalar> = ["=", "+", "-", "*", "/", "%", "<", ">", "!", "&", "|", "^", "?", "~", "."]
            if operators.contains(c) {
                var k = i + 1
                while k < s.count, operators.contains(s[k]) { k += 1 }
                emit(.punct, String(String.UnicodeScalarView(s[i..<k])))
                i = k
                continue
            }
            emit(.punct, String(c))
            i += 1
        }
        return tokens
    }

    // MARK: Brace classification

    /// Words whose presence in a statement head makes its `{` a body, not a closure.
    static let bodyKeywords: Set<String> = [
        "func", "init", "deinit", "subscript", "if", "else", "guard", "while", "for", "repeat", "do",
        "catch", "switch", "defer", "struct", "class", "enum", "extension", "actor", "protocol", "get", "set",
        "willSet", "didSet", "_modify", "_read",
    ]

    static func isClosureBrace(_ tokens: [Token], at index: Int) -> Bool {
        guard index > 0 else { return true }
        let previous = tokens[index - 1]
        if bodyKeywords.contains(previous.text) { return false }
        if previous.kind == .interpolationOpen { return true }
        if previous.kind == .punct {
            switch previous.text {
            case ")", "]", "}": break
            case _ where previous.text.hasSuffix("?") || previous.text.hasSuffix("!") || previous.text.hasSuffix(">"):
                break // a type's `?`/`!`/`>` before a body, e.g. `-> Int? {`; look at the head
            default: return true // `(`, `,`, `:`, `=`, `??`, ... : an expression position
            }
        }
        // Walk the statement head back to its start, skipping balanced groups.
        var k = index - 1, sawEquals = false, sawVar = false
        while k >= 0 {
            let token = tokens[k]
            if token.kind == .punct, token.text == ")" || token.text == "]" {
                let close = token.text, open = close == ")" ? "(" : "["
                var depth = 0
                while k >= 0 {
                    let here = tokens[k]
                    if here.kind == .punct, here.text == close { depth += 1 }
                    let opens = here.kind == .interpolationOpen ? open == "(" : here.kind == .punct && here.text == open
                    if opens {
                        depth -= 1
                        if depth == 0 { break }
                    }
                    k -= 1
                }
            } else if token.kind == .interpolationOpen || token.kind == .punct && ["{", "}", ";", "(", "["].contains(token.text) {
                break // the statement's start, or an unclosed bracket: an expression
            } else if token.kind == .word {
                if bodyKeywords.contains(token.text) { return false }
                if token.text == "var" { sawVar = true }
                if token.text == "return" || token.text == "throw" { break }
            } else if token.kind == .punct, token.text == "=" {
                sawEquals = true
            }
            if k >= 0, tokens[k].newlineBefore, k > 0, endsStatement(before: tokens[k - 1], next: tokens[k]) { break }
            k -= 1
        }
        // `var x: T {` is a computed property; `var x = f {` has a closure.
        return !(sawVar && !sawEquals)
    }

    /// Whether the line break between `before` and `next` ends a statement.
    static func endsStatement(before: Token, next: Token) -> Bool {
        if next.kind == .punct, next.text.first == "." || next.text == "{" || next.text.count > 1 || "=+-*/%<>&|^?:,)]".contains(next.text) {
            return false
        }
        if before.kind == .punct, before.text != ")" && before.text != "]" && before.text != "}" && !before.text.hasSuffix("?") && !before.text.hasSuffix("!") {
            return false
        }
        if before.kind == .word, ["return", "try", "await", "throw", "as", "is"].contains(before.text) { return false }
        return true
    }

    // MARK: Analysis

    private struct Macro { let name: String, line: Int, inClosure: Bool, id: Int }

    private enum Frame {
        case brace(closure: Bool)
        case paren, bracket, interpolation
        /// A `#expect`/`#require` argument list or trailing closure.
        case macro(Macro)
    }

    static func analyse(_ tokens: [Token]) -> [MacroClosureSite] {
        var stack: [Frame] = []
        var sites: [MacroClosureSite] = []
        var reported: Set<Int> = []
        func report(_ macro: Macro, closureLine: Int) {
            guard macro.inClosure, reported.insert(macro.id).inserted else { return }
            sites.append(MacroClosureSite(macroLine: macro.line, closureLine: closureLine, macro: macro.name))
        }
        // A macro name just read (its `(` or `{` comes next), or a macro
        // argument list just closed (a `{` next is its trailing closure).
        var justNamed: Macro?
        var justClosed: Macro?
        for (index, token) in tokens.enumerated() {
            let named = justNamed, closed = justClosed
            justNamed = nil
            justClosed = nil
            if token.kind == .word, token.text == "#expect" || token.text == "#require" {
                let inClosure = stack.contains {
                    switch $0 {
                    case .brace(closure: true), .macro: return true
                    default: return false
                    }
                }
                justNamed = Macro(name: token.text, line: token.line, inClosure: inClosure, id: index)
                continue
            }
            if token.kind == .interpolationOpen { stack.append(.interpolation); continue }
            guard token.kind == .punct else { continue }
            switch token.text {
            case "(":
                stack.append(named.map(Frame.macro) ?? .paren)
            case "[":
                stack.append(.bracket)
            case ")", "]":
                if case let .macro(macro)? = stack.popLast() { justClosed = macro }
            case "{":
                if let macro = named ?? closed {
                    // `#expect { ... }`, `#expect(throws: E.self) { ... }`: the
                    // trailing closure is a macro argument too.
                    report(macro, closureLine: token.line)
                    stack.append(.macro(macro))
                } else {
                    if let macro = innermostMacro(stack) { report(macro, closureLine: token.line) }
                    stack.append(.brace(closure: isClosureBrace(tokens, at: index)))
                }
            case "}":
                _ = stack.popLast()
            default:
                break
            }
        }
        return sites
    }

    private static func innermostMacro(_ stack: [Frame]) -> Macro? {
        for frame in stack.reversed() {
            if case let .macro(macro) = frame { return macro }
        }
        return nil
    }
}
