import ArgumentParser
import Foundation
import NIOCore
import RelayBroker
import RelayCLISupport
import RelayClient
import RelayCore

/// `--format table|json`, shared by every admin command.
enum AdminOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

/// The options every admin command takes: where the broker is and who we
/// are (as relay-pub/relay-sub), and the output format.
struct AdminOptions: ParsableArguments {
    @OptionGroup var client: ClientOptions

    @Option(name: .long, help: "Output: a table for people (default) or JSON with stable snake_case keys for scripts.")
    var format: AdminOutputFormat = .table

    /// Connects, runs `body`, closes. Exit codes from the one table
    /// (RelayExit, docs/exit-codes.md): 0 done; 77 refused (`not_authorized`:
    /// this certificate has no admin grant, or not enough of one; or the TLS
    /// handshake refused); 64 an invalid request; 69 the broker cannot be
    /// reached or dropped the session (with several `--server` addresses:
    /// none could be reached; each is tried in turn); 1 any other broker
    /// error (not found, in use, not supported).
    func withAdmin<T>(_ body: (AdminClient) async throws -> T) async throws -> T {
        var configuration = try client.configuration(clientName: "relayctl")
        // A listing is one ADMINREPLY (spec §4.15), refused when it is above
        // our limit: announce the largest the spec allows (64 MiB), not the
        // 1 MiB default that thousands of rows outgrow.
        configuration.maxFrameSize = 64 << 20
        let admin: AdminClient
        do {
            admin = try await AdminClient.connect(configuration)
        } catch let refused as AdminClient.Refused {
            CLIRunner.fail("the broker at \(refused.server ?? configuration.server) refused the session: \(refused)",
                           code: RelayExit.refused.rawValue)
        } catch {
            let servers = configuration.servers.map(\.description).joined(separator: ",")
            CLIRunner.fail("cannot open an admin session to \(servers): \(error)",
                           code: (error as? RelayClientError)?.exitCode ?? RelayExit.unavailable.rawValue)
        }
        do {
            let result = try await body(admin)
            await admin.close()
            return result
        } catch let refused as AdminClient.Refused {
            await admin.close()
            let code: Int32
            switch refused.errorCode {
            case .invalidAdminRequest?, .invalidFilter?: code = RelayExit.usage.rawValue
            case .notAuthorized?: code = RelayExit.refused.rawValue
            case .some(let known) where known.closesConnection: code = RelayExit.unavailable.rawValue
            default: code = RelayExit.failure.rawValue
            }
            CLIRunner.fail(refused.description, code: code)
        }
    }

    /// Calls `operation` and decodes its JSON result.
    func call<T: Decodable>(_ operation: String, _ type: T.Type, arguments: [String: AdminArgument] = [:]) async throws -> T {
        try await withAdmin { admin in try await Self.call(admin, operation, type, arguments: arguments) }
    }

    static func call<T: Decodable>(_ admin: AdminClient, _ operation: String, _ type: T.Type,
                                   arguments: [String: AdminArgument] = [:]) async throws -> T {
        let body = try await admin.call(operation, arguments: try AdminArgument.encode(arguments))
        do {
            return try AdminJSON.decoder().decode(T.self, from: Data(body.readableBytesView))
        } catch {
            CLIRunner.fail("the broker's answer to \(operation) is not what this relayctl expects (\(error)); use a relayctl of the broker's version", code: 1)
        }
    }

    /// Prints `value` as JSON (sorted keys, one line) or as `table`.
    func emit<T: Encodable>(_ value: T, table: () -> AdminTable) throws {
        switch format {
        case .json: print(String(decoding: try AdminJSON.encoder().encode(value), as: UTF8.self))
        case .table: print(table().render(), terminator: "")
        }
    }
}

/// One argument value of an ADMIN request.
enum AdminArgument: Encodable {
    case text(String), integer(Int64), flag(Bool)

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let t): try container.encode(t)
        case .integer(let i): try container.encode(i)
        case .flag(let b): try container.encode(b)
        }
    }

    static func encode(_ arguments: [String: AdminArgument]) throws -> [UInt8] {
        arguments.isEmpty ? [] : Array(try AdminJSON.encoder().encode(arguments))
    }
}

/// A plain-text table: a header row and aligned columns; text cells are
/// escaped for the terminal (a principal or topic is never printed raw).
struct AdminTable {
    var columns: [String]
    var rows: [[String]] = []

    init(_ columns: String...) { self.columns = columns }

    mutating func add(_ cells: String...) { rows.append(cells.map(DisplayText.escaped)) }

    func render() -> String {
        var widths = columns.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }
        return line(columns) + rows.map(line).joined()
    }

    /// A key/value table (status).
    static func keyValue(_ pairs: [(String, String)]) -> AdminTable {
        var table = AdminTable("FIELD", "VALUE")
        for (key, value) in pairs { table.add(key, value) }
        return table
    }
}

/// `1.5 MiB`, for tables only (JSON keeps exact byte counts).
func humanBytes(_ bytes: Int?) -> String {
    guard let bytes else { return "-" }
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes), unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
}
