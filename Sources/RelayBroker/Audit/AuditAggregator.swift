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
    ///
    /// One pass over the fields (the first field of each name counts, as
    /// `fields.first { $0.key == name }` would find it), each value's text
    /// as `"\(value)"` gives it: the look-up per name copied every field up
    /// to seven times, ~10,000 instructions per audit line (wave 15).
    static func actor(from fields: KeyValuePairs<String, any Sendable>) -> (who: String, decision: String) {
        // cause, rule, reason, then actorFields' order: fingerprint, serial, principal, peer.
        var found: [String?] = [nil, nil, nil, nil, nil, nil, nil]
        for (key, value) in fields {
            let slot: Int
            switch key {
            case "cause": slot = 0
            case "rule": slot = 1
            case "reason": slot = 2
            case "fingerprint": slot = 3
            case "serial": slot = 4
            case "principal": slot = 5
            case "peer": slot = 6
            default: continue
            }
            if found[slot] == nil { found[slot] = text(value) }
        }
        let decision = found[0..<3].compactMap { $0 }.joined(separator: " ")
        return (who(found[3...]), decision)
    }

    /// `"\(value)"`: a String is its own text.
    private static func text(_ value: any Sendable) -> String {
        if let string = value as? String { return string }
        return "\(value)"
    }

    /// The first non-empty actor field, `found` in ``actorFields``' order.
    private static func who(_ found: ArraySlice<String?>) -> String {
        for (name, value) in zip(actorFields, found) {
            guard let text = value, !text.isEmpty else { continue }
            if name == "peer", let colon = text.lastIndex(of: ":"),
               text[text.index(after: colon)...].allSatisfy(\.isNumber) {
                return "peer " + text[..<colon]
            }
            return name + " " + text
        }
        return ""
    }
}
