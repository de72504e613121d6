/// The one JSON string escaper: relayd's JSON log lines, the audit trail and
/// `relay-sub --format json` all quote strings through it, so they agree on
/// every scalar.
///
/// `"` and `\` are escaped, `\n` `\t` `\r` by name, and every scalar
/// ``DisplayText/isUnsafe(_:)`` names (C0 and C1 controls, DEL, U+2028 and
/// U+2029, bidi and other format characters) as `\uXXXX` (UTF-16 units, so a
/// surrogate pair above the BMP). One value is then always on one line and
/// never reorders the text around it, and a JSON reader gets the exact value
/// back. Everything else, including non-BMP letters and emoji, is written as
/// UTF-8.
public enum JSONText {
    public static func quoted(_ s: String) -> String {
        DisplayText.quoted(s, style: .json)
    }

    /// Appends ``quoted(_:)`` of `s` to `out`.
    public static func appendQuoted(_ s: String, to out: inout String) {
        DisplayText.appendQuoted(s, style: .json, to: &out)
    }
}
