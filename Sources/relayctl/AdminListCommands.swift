import ArgumentParser
import Foundation
import RelayBroker

// The read-only admin commands: they need `admin = ["read"]` on a rule
// matching the client certificate (docs/security.md, "Admin access").

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the broker's version, uptime, config, store and traffic (needs admin read).",
        discussion: "Example:\n  relayctl status --server broker:7443 --cert ops.pem --key ops.key --ca ca.pem")

    @OptionGroup var options: AdminOptions

    func run() async throws {
        let status = try await options.call("status", AdminStatus.self)
        try options.emit(status) {
            AdminTable.keyValue([
                ("version", status.version), ("started", status.startedAt),
                ("uptime", "\(Int(status.uptimeSeconds)) s"), ("config", status.configPath),
                ("config digest", status.configDigest ?? "-"), ("config loaded", status.configLoadedAt),
                ("data dir", status.dataDirectory),
                ("store", "\(humanBytes(status.storeUsedBytes)) of \(humanBytes(status.storeLimitBytes))"),
                ("messages stored", status.storeMessages.map(String.init) ?? "-"),
                ("connections", "\(status.connections)"),
                ("messages in", "\(status.messagesInTotal) (\(String(format: "%.1f", status.messagesInPerSecond))/s)"),
                ("messages out", "\(status.messagesOutTotal) (\(String(format: "%.1f", status.messagesOutPerSecond))/s)"),
                ("server cert until", status.tlsCertificateNotAfter ?? "-"),
                ("CRL next update", status.crlNextUpdate.map { "\($0) (\(status.crlIssuer ?? "-"))" } ?? "no CRL with a next update"),
            ])
        }
    }
}

struct Connections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List authenticated connections: principal, certificate fingerprint, address, traffic (needs admin read).")

    @OptionGroup var options: AdminOptions

    func run() async throws {
        let list = try await options.call("connections", AdminList<AdminConnection>.self)
        try options.emit(list) { Self.table(list.items) }
    }

    static func table(_ items: [AdminConnection]) -> AdminTable {
        var table = AdminTable("ID", "PRINCIPAL", "FINGERPRINT", "REMOTE", "SINCE", "IN", "OUT", "SUBS", "QUEUED")
        for c in items {
            table.add("\(c.id)", c.principal, String(c.fingerprint.prefix(16)), c.remoteAddress, c.connectedSince,
                      "\(c.messagesIn)", "\(c.messagesOut)", "\(c.subscriptions)", humanBytes(c.bytesQueued))
        }
        return table
    }
}

struct Subscriptions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List open subscriptions of every connection (needs admin read).")

    @OptionGroup var options: AdminOptions

    func run() async throws {
        let list = try await options.call("subscriptions", AdminList<AdminSubscription>.self)
        try options.emit(list) {
            var table = AdminTable("CONN", "PRINCIPAL", "SID", "FILTER", "DURABLE", "ACK", "NEXT", "CREDIT", "BUFFERED")
            for s in list.items {
                table.add("\(s.connectionId)", s.principal, "\(s.subscriptionId)", s.filter, s.durable ?? "-", s.ackMode,
                          "\(s.nextSequence)", "\(s.credit)", "\(s.bufferedMessages)")
            }
            return table
        }
    }
}

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List stored topics: message count, bytes, first and last sequence and time (needs admin read).")

    @OptionGroup var options: AdminOptions

    func run() async throws {
        let list = try await options.call("topics", AdminList<AdminTopic>.self)
        try options.emit(list) {
            var table = AdminTable("TOPIC", "MESSAGES", "BYTES", "FIRST", "LAST", "FIRST TIME", "LAST TIME")
            for t in list.items {
                table.add(t.topic, "\(t.messages)", humanBytes(t.bytes.map { Int(clamping: $0) }), "\(t.firstSequence)",
                          "\(t.lastSequence)", t.firstTime ?? "-", t.lastTime ?? "-")
            }
            return table
        }
    }
}
