import ArgumentParser
import Foundation
import RelayBroker
import RelayCLISupport
import RelayCore
import RelayClient

struct Durables: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List durable subscriptions: owner, filter, cursor, lag in messages and time, last ack (needs admin read).",
        discussion: """
        The filter and last ack are known for durables attached since relayd started; for others they show as \
        '-' and the lag counts every stored message after the cursor.
        """)

    @OptionGroup var options: AdminOptions

    func run() async throws {
        let list = try await options.call("durables", AdminList<AdminDurable>.self)
        try options.emit(list) {
            var table = AdminTable("NAME", "OWNER", "PRINCIPAL", "FILTER", "ATTACHED", "CURSOR", "LAG", "LAG TIME", "LAST ACK")
            for d in list.items {
                table.add(d.name, String(d.owner.prefix(16)), d.principal ?? "-", d.filter ?? "-", d.attached ? "yes" : "no",
                          "\(d.cursor)", "\(d.lagMessages)\(d.lagCapped ? "+" : "")", String(format: "%.1f s", d.lagSeconds),
                          d.lastAck ?? "-")
            }
            return table
        }
    }
}

struct Durable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage durable subscriptions.", subcommands: [Delete.self])

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a durable cursor (needs admin write). Refused while a session has it attached.",
            discussion: """
            The owner is the digest relayctl durables shows: its 16-digit column, or the full 64 digits of \
            --format json (a shorter prefix is looked up among the durables of that name and must match one).

            On a cluster edge (jetstream backend) the delete is for every edge, but only this edge's sessions \
            are checked: a durable attached on another edge is deleted, and that edge's next ACK stores its cursor \
            again (docs/cluster.md, "Durable cursors"). Disconnect its subscriber first.

            Example:
              relayctl durable delete billing-audit --owner 3f2a9c01d4e5b6a7
            """)

        @Argument(help: "The durable name.")
        var name: String

        @Option(name: .long, help: ArgumentHelp("The owner digest as relayctl durables shows it (a prefix), or all 64 hex digits.",
                                                valueName: "hex"))
        var owner: String

        @OptionGroup var options: AdminOptions

        /// The table shows 16 digits; the broker takes only the whole digest.
        static let minimumPrefix = 8

        func run() async throws {
            if owner.count < Self.minimumPrefix && owner.allSatisfy(\.isHexDigit) {
                CLIRunner.fail("owner '\(owner)' is too short to look up: give at least \(Self.minimumPrefix) of the digits relayctl durables shows (its 16), or all 64",
                               code: RelayExit.usage.rawValue)
            }
            let outcome = try await options.withAdmin { admin in
                let digest = try await Self.fullOwner(admin, name: name, prefix: owner.lowercased())
                return try await AdminOptions.call(admin, "durable_delete", AdminOutcome.self,
                                                   arguments: ["name": .text(name), "owner": .text(digest)])
            }
            try options.emit(outcome) { AdminTable.keyValue([("durable", name), ("result", outcome.result)]) }
        }

        /// `prefix` when it is the whole digest (or not hex: the broker says why);
        /// otherwise the one owner of a durable `name` it begins.
        static func fullOwner(_ admin: AdminClient, name: String, prefix: String) async throws -> String {
            guard prefix.count >= minimumPrefix, prefix.count < 64, prefix.allSatisfy(\.isHexDigit) else { return prefix }
            let list = try await AdminOptions.call(admin, "durables", AdminList<AdminDurable>.self)
            let owners = Set(list.items.filter { $0.name == name && $0.owner.hasPrefix(prefix) }.map(\.owner))
            guard owners.count == 1, let digest = owners.first else {
                CLIRunner.fail(owners.isEmpty ? "no durable '\(name)' whose owner starts with \(prefix); relayctl durables lists them"
                               : "\(owners.count) durables '\(name)' have an owner starting with \(prefix); give more digits (relayctl durables --format json)",
                               code: owners.isEmpty ? RelayExit.failure.rawValue : RelayExit.usage.rawValue)
            }
            return digest
        }
    }
}
