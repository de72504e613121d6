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
        DisplayText.quoted(s, style: .json)
    }
}
