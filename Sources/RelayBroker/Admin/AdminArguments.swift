import Foundation
import NIOCore

/// The JSON object an ADMIN frame carries as arguments (§4.15): an empty
/// body or `{}` for none; strings, integers and booleans as values.
enum AdminArguments {
    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ body: ByteBuffer) throws -> [String: any Sendable] {
        guard body.readableBytes > 0 else { return [:] }
        let data = Data(body.readableBytesView)
        let values: [String: Value]
        do {
            values = try JSONDecoder().decode([String: Value].self, from: data)
        } catch {
            throw Invalid(description: "the ADMIN body must be a JSON object whose values are strings, integers or booleans (or empty)")
        }
        return values.mapValues { value -> any Sendable in
            switch value {
            case .flag(let b): return b
            case .integer(let i): return i
            case .text(let t): return t
            }
        }
    }

    /// One argument value; booleans are tried first so `true` never reads as 1.
    enum Value: Decodable {
        case flag(Bool), integer(Int64), text(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let b = try? container.decode(Bool.self) { self = .flag(b) } else if let i = try? container.decode(Int64.self) {
                self = .integer(i)
            } else {
                self = .text(try container.decode(String.self))
            }
        }
    }

    /// For the audit line: `filter=orders.> confirm=true`, keys sorted.
    static func summary(_ arguments: [String: any Sendable]) -> String {
        arguments.keys.sorted().map { "\($0)=\(arguments[$0].map { "\($0)" } ?? "")" }.joined(separator: " ")
    }

    static func string(_ arguments: [String: any Sendable], _ key: String) -> String? { arguments[key] as? String }
    static func integer(_ arguments: [String: any Sendable], _ key: String) -> Int64? { arguments[key] as? Int64 }
    static func flag(_ arguments: [String: any Sendable], _ key: String) -> Bool { arguments[key] as? Bool ?? false }
}
