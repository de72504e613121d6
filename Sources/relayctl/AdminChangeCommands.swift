import ArgumentParser
import Foundation
import NIOCore
import RelayBroker
import RelayCLISupport
import RelayCore

// The admin commands that change state or copy the data out: they need
// `admin = ["read", "write"]` (docs/security.md, "Admin access").

struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete every stored message on a topic or filter, now (needs admin write).",
        discussion: """
        Irreversible: the messages are gone for every subscriber and durable. Nothing happens without --yes.

        Example:
          relayctl purge 'orders.test.>' --yes
        """)

    @Argument(help: "A topic or filter (orders.eu.created, orders.*.created, 'orders.>').")
    var filter: String

    @Flag(name: .long, help: "Confirm the deletion.")
    var yes = false

    @OptionGroup var options: AdminOptions

    func run() async throws {
        guard yes else {
            CLIRunner.fail("purge deletes every stored message matching '\(filter)' for good; repeat with --yes to confirm", code: RelayExit.usage.rawValue)
        }
        let outcome = try await options.call("purge", AdminOutcome.self,
                                             arguments: ["filter": .text(filter), "confirm": .flag(true)])
        try options.emit(outcome) {
            // A count the backend does not report (jetstream: bytes, topics) is "-", not 0.
            AdminTable.keyValue([("filter", filter), ("messages deleted", "\(outcome.messages ?? 0)"),
                                 ("bytes", outcome.bytes.map(String.init) ?? "-"), ("topics", outcome.topics.map(String.init) ?? "-")])
        }
    }
}

struct Disconnect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "End a client's session (needs admin write); it gets ERR disconnected_by_operator.",
        discussion: "Example (ids from relayctl connections):\n  relayctl disconnect 17")

    @Argument(help: "The connection id.")
    var id: Int64

    @OptionGroup var options: AdminOptions

    func run() async throws {
        let outcome = try await options.call("disconnect", AdminOutcome.self, arguments: ["id": .integer(id)])
        try options.emit(outcome) { AdminTable.keyValue([("connection", "\(id)"), ("result", outcome.result)]) }
    }
}

struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reload the broker's config as SIGHUP does (needs admin write); exit 1 when it was refused.")

    @OptionGroup var options: AdminOptions

    func run() async throws {
        let outcome = try await options.call("reload", AdminOutcome.self)
        try options.emit(outcome) { AdminTable.keyValue([("reload", outcome.result)] + (outcome.reason.map { [("reason", $0)] } ?? [])) }
        if outcome.result != "applied" {
            let why = outcome.reason.map { ": \($0)" } ?? "; its log and audit trail say why"
            printError("relayctl: the broker refused the new configuration and kept the old one\(why)")
            throw ExitCode(1)
        }
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the broker's store, consistent and compacted, while it runs (needs admin write).",
        discussion: """
        The copy is streamed over the admin connection and written here, into DIR/data.mdb (DIR must not exist \
        or be empty). Restore: stop relayd, point [storage] path (or --data-dir) at DIR, start it.

        Example:
          relayctl backup --to /var/backups/relay-2026-12-03
        """)

    @Option(name: .long, help: ArgumentHelp("A new or empty directory for the copy.", valueName: "dir"))
    var to: String

    @OptionGroup var options: AdminOptions

    func run() async throws {
        let manager = FileManager.default
        if let refusal = BackupFile.refusal(for: to) { CLIRunner.fail(refusal.message, code: refusal.code.rawValue) }
        let path = (to as NSString).appendingPathComponent("data.mdb")
        let partial = path + ".partial"
        // Created at the first chunk, so a refused backup leaves nothing behind.
        let output = BackupFile(directory: to, path: partial)
        let outcome: AdminOutcome
        do {
            outcome = try await options.withAdmin { admin in
                let body = try await admin.call("backup") { chunk in try output.write(chunk) }
                return try AdminJSON.decoder().decode(AdminOutcome.self, from: Data(body.readableBytesView))
            }
            try output.finish()
        } catch {
            output.discard()
            throw error
        }
        guard output.written == outcome.bytes else {
            output.discard()
            CLIRunner.fail("the copy is incomplete: the broker sent \(outcome.bytes ?? 0) bytes, \(output.written) arrived", code: 1)
        }
        try manager.moveItem(atPath: partial, toPath: path)
        try options.emit(outcome) { AdminTable.keyValue([("backup", path), ("bytes", "\(outcome.bytes ?? 0)")]) }
    }
}

/// The backup's `data.mdb.partial`: created (with its directory, mode 0700)
/// when the first bytes arrive, fsynced at the end, removed on failure.
final class BackupFile {
    let directory: String
    let path: String
    private var handle: FileHandle?
    private(set) var written: UInt64 = 0

    init(directory: String, path: String) {
        self.directory = directory
        self.path = path
    }

    /// Why `directory` cannot take the copy, checked before asking the broker
    /// (the directory itself is created at the first chunk): a file there or
    /// on the way to it used to end the run with Foundation's error text.
    static func refusal(for directory: String) -> (message: String, code: RelayExit)? {
        let manager = FileManager.default
        var probe = directory  // the nearest part of the path that exists
        var isDirectory: ObjCBool = false
        while !manager.fileExists(atPath: probe, isDirectory: &isDirectory) {
            let parent = (probe as NSString).deletingLastPathComponent
            let next = parent.isEmpty ? "." : parent
            if next == probe { return nil }
            probe = next
        }
        if !isDirectory.boolValue {
            return ("\(probe) is a file, not a directory; give a new or empty directory for the copy", .usage)
        }
        if probe == directory, let existing = try? manager.contentsOfDirectory(atPath: directory), !existing.isEmpty {
            return ("\(directory) is not empty; give a new or empty directory so no store is overwritten", .usage)
        }
        if access(probe, W_OK) != 0 {
            return ("cannot write in \(probe) (uid \(getuid())); give a directory this user can write, or fix its permissions", .noInput)
        }
        return nil
    }

    func write(_ chunk: ByteBuffer) throws {
        if handle == nil {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let opened = FileHandle(forWritingAtPath: path) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
            }
            handle = opened
        }
        try handle?.write(contentsOf: Data(chunk.readableBytesView))
        written += UInt64(chunk.readableBytes)
    }

    func finish() throws {
        try handle?.synchronize()
        try handle?.close()
        handle = nil
    }

    func discard() {
        try? handle?.close()
        handle = nil
        try? FileManager.default.removeItem(atPath: path)
    }
}
