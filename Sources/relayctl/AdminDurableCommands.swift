import ArgumentParser
import Foundation
import RelayBroker

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
            discussion: "Example (the owner digest as relayctl durables --format json shows it):\n  relayctl durable delete billing-audit --owner 3f2a…")

        @Argument(help: "The durable name.")
        var name: String

        @Option(name: .long, help: ArgumentHelp("The owner digest, 64 hex digits (relayctl durables --format json).", valueName: "hex"))
        var owner: String

        @OptionGroup var options: AdminOptions

        func run() async throws {
            let outcome = try await options.call("durable_delete", AdminOutcome.self,
                                                 arguments: ["name": .text(name), "owner": .text(owner)])
            try options.emit(outcome) { AdminTable.keyValue([("durable", name), ("result", outcome.result)]) }
        }
    }
}
