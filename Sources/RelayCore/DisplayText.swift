/// The one rule for showing untrusted text (certificate names, principals,
/// topics and headers from clients) to a person: in logs, the audit trail,
/// `relayctl` and the CLIs' output.
///
/// A certificate subject is chosen by whoever wrote the CSR. Shown raw, a
/// newline forges a log line, an ESC or C1 CSI (U+009B) drives the
/// terminal, and a bidirectional override (U+202E) makes `alice‮gpj.exe`
/// read as something else. Every scalar ``isUnsafe(_:)`` says is dangerous
/// is shown as a `\u{XXXX}` escape instead; everything else, including
/// ordinary non-ASCII letters, is shown as is.
public enum DisplayText {
    /// True for scalars never shown raw:
    /// - C0 controls U+0000-U+001F and DEL U+007F;
    /// - C1 controls U+0080-U+009F (U+009B is CSI, a terminal escape on its own);
    /// - every Unicode format character (general category Cf): the bidi
    ///   controls U+200E/U+200F, U+202A-U+202E, U+2066-U+2069, U+061C, the
    ///   zero-width characters, U+FEFF, soft hyphen, tag characters …;
    /// - the line and paragraph separators U+2028/U+2029, which some
    ///   viewers treat as newlines.
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029 { return true }
        if v < 0xA0 { return false }  // printable ASCII: the common case, no table lookup
        return scalar.properties.generalCategory == .format
    }

    /// True when `text` holds a scalar ``isUnsafe(_:)`` refuses.
    public static func containsUnsafe(_ text: String) -> Bool {
        text.unicodeScalars.contains(where: isUnsafe)
    }

    /// The first unsafe scalar of `text`, for error messages ("contains U+202E").
    public static func firstUnsafe(_ text: String) -> Unicode.Scalar? {
        text.unicodeScalars.first(where: isUnsafe)
    }

    /// `U+202E` style name of a scalar, for error messages.
    public static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    /// `text` with every unsafe scalar replaced by `\u{X}` (upper-case hex,
    /// Swift's literal syntax): `"a\u{202E}b"` is shown as `a\u{202E}b`,
    /// ESC as `\u{1B}`.
    /// Safe text comes back unchanged (no copy of the common case's bytes
    /// beyond the check). Display only: a backslash is not itself escaped,
    /// so this is not meant to be parsed back.
    public static func escaped(_ text: String) -> String {
        guard containsUnsafe(text) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) {
                out += escape(scalar)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
    }

    /// How ``quoted(_:style:)`` writes an unsafe scalar.
    public enum QuoteStyle: Sendable {
        /// `\u{202E}`: for people (explain, policy messages).
        case swift
        /// `\u202e` (UTF-16 units, a surrogate pair above the BMP): a valid
        /// JSON string literal that decodes to the exact value (log lines,
        /// the audit trail, `relay-sub --format json`).
        case json
    }

    /// `text` in double quotes, with `"` and `\` escaped, `\n`, `\t`, `\r`
    /// by name and every other unsafe scalar escaped in `style`, so a quoted
    /// value can never end early, spill onto another line or reorder the
    /// text around it.
    public static func quoted(_ text: String) -> String {
        quoted(text, style: .swift)
    }

    /// A UTF-8 byte that ``quoted(_:style:)`` copies unchanged in every
    /// style: printable ASCII (U+0020...U+007E) other than `"` and `\`.
    @inline(__always)
    static func isPlainQuotable(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
    }

    /// ``quoted(_:)`` with the escape style chosen.
    public static func quoted(_ text: String, style: QuoteStyle) -> String {
        // Printable ASCII other than `"` and `\` is never escaped in either
        // style: such a text (subjects, serials, fingerprints, event names:
        // most of what the audit trail and log lines quote, ~19 values per
        // accepted connection) is copied whole instead of scalar by scalar.
        if text.utf8.allSatisfy(isPlainQuotable) { return "\"" + text + "\"" }
        var out = ""
        appendEscaped(text, style: style, to: &out)
        return out
    }

    /// Appends ``quoted(_:style:)`` of `text` to `out`: the same text,
    /// without a string of its own (the audit trail builds a line of ~10
    /// quoted values this way).
    public static func appendQuoted(_ text: String, style: QuoteStyle, to out: inout String) {
        if text.utf8.allSatisfy(isPlainQuotable) {
            out.append("\"")
            out.append(text)
            out.append("\"")
        } else {
            appendEscaped(text, style: style, to: &out)
        }
    }

    /// The scalar-by-scalar path of ``quoted(_:style:)``, quotes included.
    private static func appendEscaped(_ text: String, style: QuoteStyle, to out: inout String) {
        out.append("\"")
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if !isUnsafe(scalar) {
                    out.unicodeScalars.append(scalar)
                } else if style == .swift {
                    out += escape(scalar)
                } else {
                    for unit in String(scalar).utf16 {
                        let hex = String(unit, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    }
                }
            }
        }
        out.append("\"")
    }
}
