import RelayCore

/// Collapses repeated audit events so a client cannot flood the trail.
///
/// Events are grouped by (event, actor, decision): the actor is the
/// certificate fingerprint, serial or principal when the event names one,
/// else the peer's address without its port (pre-authentication events);
/// the decision is the event's `cause` and `rule` (both from small, bounded
/// sets), so a refusal for a new reason is written even mid-flood. Within one
/// interval the first event of a group is written in full and the rest are
/// only counted; when the interval ends, one `event_repeated` line per group
/// gives the count, the first and last times and the last event's fields.
/// Every decision type therefore still appears, and the counts add up.
///
/// Past `maxGroups` groups in one interval, new actors share one overflow
/// group per event (actor `*`), so an attacker with many addresses or
/// certificates still writes at most about 2 × (maxGroups + event kinds)
/// lines per interval.
struct AuditAggregator {
    struct Group: Hashable {
        var event: String
        var actor: String
        var decision = ""
    }

    struct Pending {
        var suppressed = 0
        var firstTS = ""
        var lastTS = ""
        var lastFields = ""
    }

    /// Lifecycle and trail-integrity events are rare and always written.
    static let alwaysWritten: Set<String> = [
        "broker_started", "broker_stopped", "reload", "event_repeated",
        "trail_recovered", "trail_truncated", "checkpoint_missing", "checkpoint_invalid",
    ]

    /// The fields that identify who caused an event, most specific first.
    static let actorFields = ["fingerprint", "serial", "principal", "peer"]

    let maxGroups: Int
    private(set) var groups: [Group: Pending] = [:]

    init(maxGroups: Int = 1_024) {
        self.maxGroups = maxGroups
    }

    /// Whether the event is written now (true) or only counted (false).
    /// `fields` is the event's `,"k":v…` text, kept for the summary.
    mutating func admit(event: String, actor: (who: String, decision: String), ts: String, fields: String) -> Bool {
        if Self.alwaysWritten.contains(event) { return true }
        var group = Group(event: event, actor: actor.who, decision: actor.decision)
        if groups[group] == nil && groups.count >= maxGroups { group = Group(event: event, actor: "*") }
        guard var pending = groups[group] else {
            groups[group] = Pending()
            return true
        }
        if pending.suppressed == 0 { pending.firstTS = ts }
        pending.suppressed += 1
        pending.lastTS = ts
        pending.lastFields = fields
        groups[group] = pending
        return false
    }

    var isEmpty: Bool { groups.isEmpty }

    /// Ends the interval: the summary bodies (without `ts`, which the writer
    /// adds) for groups that had repeats, sorted for a stable order.
    mutating func drain() -> [String] {
        let summaries = groups.filter { $0.value.suppressed > 0 }
            .sorted { ($0.key.event, $0.key.actor, $0.key.decision) < ($1.key.event, $1.key.actor, $1.key.decision) }
            .map { group, pending in
                ",\"event\":\"event_repeated\",\"repeated_event\":\(JSONText.quoted(group.event))"
                    + ",\"actor\":\(JSONText.quoted(group.actor)),\"suppressed\":\(pending.suppressed)"
                    + ",\"first_ts\":\(JSONText.quoted(pending.firstTS)),\"last_ts\":\(JSONText.quoted(pending.lastTS))"
                    + ",\"last\":{" + pending.lastFields.dropFirst() + "}"
            }
        groups.removeAll(keepingCapacity: true)
        return summaries
    }

    /// The actor and decision of an event from its fields; a peer address
    /// loses its port so reconnecting from new source ports stays one group.
    static func actor(from fields: KeyValuePairs<String, any Sendable>) -> (who: String, decision: String) {
        let decision = ["cause", "rule", "reason"].compactMap { name in fields.first { $0.key == name }.map { "\($0.value)" } }
            .joined(separator: " ")
        return (who(from: fields), decision)
    }

    private static func who(from fields: KeyValuePairs<String, any Sendable>) -> String {
        for name in actorFields {
            guard let value = fields.first(where: { $0.key == name })?.value else { continue }
            let text = "\(value)"
            guard !text.isEmpty else { continue }
            if name == "peer", let colon = text.lastIndex(of: ":"),
               text[text.index(after: colon)...].allSatisfy(\.isNumber) {
                return "peer " + text[..<colon]
            }
            return name + " " + text
        }
        return ""
    }
}
