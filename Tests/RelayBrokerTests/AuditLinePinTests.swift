import Foundation
import RelayCore
import Testing
@testable import RelayBroker

/// Wave 15 rewrote how an audit line's pieces are built on the handshake
/// path (two lines per connection): the timestamp byte by byte, string values
/// cast first and quoted into the line, the aggregation actor in one pass
/// over the fields. These pin the text against the code they replaced.
@Suite("Audit line pieces: the same text as before wave 15")
struct AuditLinePinTests {
    // MARK: The pre-wave-15 code, as it was

    static func timestampBefore(_ date: Date) -> String {
        let since1970 = date.timeIntervalSince1970
        var seconds = time_t(since1970.rounded(.down))
        let millis = min(999, max(0, Int(((since1970 - Double(seconds)) * 1000).rounded(.down))))
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return "1970-01-01T00:00:00.000Z" }
        return AuditTrail.pad(Int(parts.tm_year) + 1900, 4) + "-" + AuditTrail.pad(Int(parts.tm_mon) + 1, 2) + "-"
            + AuditTrail.pad(Int(parts.tm_mday), 2) + "T" + AuditTrail.pad(Int(parts.tm_hour), 2) + ":"
            + AuditTrail.pad(Int(parts.tm_min), 2) + ":" + AuditTrail.pad(Int(parts.tm_sec), 2) + "." + AuditTrail.pad(millis, 3) + "Z"
    }

    static func jsonValueBefore(_ value: any Sendable) -> String {
        switch value {
        case let v as Bool: return v ? "true" : "false"
        case let v as Int: return String(v)
        case let v as Int64: return String(v)
        case let v as UInt64: return String(v)
        case let v as UInt32: return String(v)
        case let v as [String]: return "[" + v.map { JSONText.quoted(AuditTrail.capped($0)) }.joined(separator: ",") + "]"
        case let v as String: return JSONText.quoted(AuditTrail.capped(v))
        default: return JSONText.quoted(String(describing: value))
        }
    }

    static func actorBefore(from fields: KeyValuePairs<String, any Sendable>) -> (who: String, decision: String) {
        let decision = ["cause", "rule", "reason"].compactMap { name in fields.first { $0.key == name }.map { "\($0.value)" } }
            .joined(separator: " ")
        var who = ""
        for name in AuditAggregator.actorFields {
            guard let value = fields.first(where: { $0.key == name })?.value else { continue }
            let text = "\(value)"
            guard !text.isEmpty else { continue }
            if name == "peer", let colon = text.lastIndex(of: ":"),
               text[text.index(after: colon)...].allSatisfy(\.isNumber) {
                who = "peer " + text[..<colon]
                break
            }
            who = name + " " + text
            break
        }
        return (who, decision)
    }

    // MARK: Pins

    @Test("timestamp: the same text for dates across the calendar, every millisecond digit and the edges")
    func timestamps() {
        var dates: [Date] = [Date(), Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -1),
                             Date(timeIntervalSince1970: -0.0005), Date(timeIntervalSince1970: 0.9999),
                             Date(timeIntervalSince1970: 951_782_400.123),  // 2000-02-29
                             Date(timeIntervalSince1970: 253_402_300_799.999),  // 9999-12-31T23:59:59.999
                             Date(timeIntervalSince1970: 253_402_300_800),  // year 10000: the fallback
                             Date(timeIntervalSince1970: -62_167_219_200),  // year 0
                             Date(timeIntervalSince1970: -62_167_219_201),  // year -1: the fallback
                             Date(timeIntervalSince1970: -2_208_988_800)]  // 1900
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            dates.append(Date(timeIntervalSince1970: Double.random(in: -3e9...5e9, using: &generator)))
        }
        for millis in 0..<1_000 {
            dates.append(Date(timeIntervalSince1970: 1_764_806_400 + Double(millis) / 1_000 + 0.0001))
        }
        for date in dates {
            #expect(AuditTrail.timestamp(date) == Self.timestampBefore(date), "\(date.timeIntervalSince1970)")
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let sample = Date(timeIntervalSince1970: 1_764_806_400.25)
        #expect(AuditTrail.timestamp(sample) == formatter.string(from: sample))
    }

    static let values: [any Sendable] = [
        "", "plain", "CN=billing-worker-1,O=Acme", "quote\"back\\slash", "line\nbreak\u{202E}", "\u{1F600}",
        String(repeating: "x", count: AuditTrail.maxValueBytes + 10), true, false, 0, -7, Int.max, Int64(-3), UInt64.max,
        UInt32(42), ["a", "b\"c"], [String](), 1.5, Double.nan, Optional<String>.none as any Sendable,
        Substring("sub"), Character("c"), UInt8(7), Int32(-9),
    ]

    @Test("appendJSONValue writes what jsonValue wrote, for every value type the trail is given")
    func jsonValues() {
        for value in Self.values {
            var out = ",\"k\":"
            AuditTrail.appendJSONValue(value, to: &out)
            #expect(out == ",\"k\":" + Self.jsonValueBefore(value), "\(value)")
            #expect(AuditTrail.jsonValue(value) == Self.jsonValueBefore(value), "\(value)")
        }
    }

    @Test("actor: the same who and decision as the look-up per name, duplicates and empty values included")
    func actors() {
        let cases: [KeyValuePairs<String, any Sendable>] = [
            [:],
            ["principal": "p", "subject": "CN=x", "serial": "0A", "fingerprint": "ab", "tls": "TLSv1.3"],
            ["principal": "p", "serial": "0A", "reason": "peer_closed", "duration_ms": 12],
            ["peer": "127.0.0.1:58372", "cause": "unknown_ca", "reason": "x"],
            ["peer": "[::1]:58372", "cause": "bad"],
            ["peer": "host:name", "rule": "r1"],
            ["fingerprint": "", "serial": "", "principal": "p"],
            ["serial": "", "serial": "1", "principal": "", "peer": "10.0.0.1:1"],
            ["cause": "a", "cause": "b", "rule": "r", "reason": "z", "fingerprint": "f", "fingerprint": "g"],
            ["principal": 7, "cause": true, "reason": ["x", "y"]],
            ["subscription": 3, "filter": "a.>", "rule": "(no rule allows it)"],
        ]
        for fields in cases {
            let now = AuditAggregator.actor(from: fields)
            let before = Self.actorBefore(from: fields)
            #expect(now.who == before.who && now.decision == before.decision, "\(fields)")
        }
    }
}
