import Foundation
import RelayCore

/// JSON string literals for hand-written JSON lines (logs, audit trail):
/// every control character is escaped, so one event is always one line,
/// and so is every other scalar ``DisplayText/isUnsafe(_:)`` names (C1
/// controls such as U+009B, bidi overrides such as U+202E, U+2028/2029):
/// the file then never holds them raw, and a JSON reader still gets the
/// exact value back.
public enum JSONText {
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if DisplayText.isUnsafe(scalar) {
                    // Every unsafe scalar is in the BMP (C0, C1, Cf up to U+FFFB) except the
                    // Cf tag characters U+E0001-U+E007F, which need a UTF-16 surrogate pair.
                    for unit in String(scalar).utf16 { out += String(format: "\\u%04x", unit) }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
