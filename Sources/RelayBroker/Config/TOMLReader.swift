import TOMLKit

/// Reads one TOML table with typed accessors that produce ``ConfigError``s
/// naming the full key path, and refuses keys nobody asked for (a typo in a
/// security setting must never be silently ignored).
struct TOMLReader {
    let file: String
    let path: String
    private let table: TOMLTable
    private var known: Set<String> = []

    init(file: String, path: String, table: TOMLTable) {
        self.file = file
        self.path = path
        self.table = table
    }

    func key(_ name: String) -> String { name.isEmpty ? path : path.isEmpty ? name : "\(path).\(name)" }

    func error(_ name: String, _ message: String) -> ConfigError {
        ConfigError(file: file, key: key(name), message: message)
    }

    private mutating func value(_ name: String) -> TOMLValueConvertible? {
        known.insert(name)
        return table[name]
    }

    mutating func string(_ name: String) throws(ConfigError) -> String? {
        guard let v = value(name) else { return nil }
        guard let s = v.string else { throw error(name, "expected a string, got \(v.type)") }
        return s
    }

    mutating func int(_ name: String, min: Int64 = 0, max: Int64 = .max) throws(ConfigError) -> Int64? {
        guard let v = value(name) else { return nil }
        guard let i = v.int else { throw error(name, "expected an integer, got \(v.type)") }
        let n = Int64(i)
        guard n >= min && n <= max else { throw error(name, "\(n) is out of range \(min)…\(max)") }
        return n
    }

    mutating func bool(_ name: String) throws(ConfigError) -> Bool? {
        guard let v = value(name) else { return nil }
        guard let b = v.bool else { throw error(name, "expected true or false, got \(v.type)") }
        return b
    }

    /// A string or a list of strings.
    mutating func strings(_ name: String) throws(ConfigError) -> [String]? {
        guard let v = value(name) else { return nil }
        if let s = v.string { return [s] }
        guard let array = v.array else { throw error(name, "expected a string or a list of strings, got \(v.type)") }
        var out: [String] = []
        for (i, element) in array.enumerated() {
            guard let s = element.string else {
                throw error("\(name)[\(i)]", "expected a string, got \(element.type)")
            }
            out.append(s)
        }
        return out
    }

    /// A duration: "250ms", "5s", "10m", "2h", "7d", or an integer number of seconds.
    mutating func duration(_ name: String) throws(ConfigError) -> Int64? {
        guard let v = value(name) else { return nil }
        if let i = v.int, i >= 0 {
            // A huge number of seconds must be an error, not an overflow trap (found with the config fuzz target).
            let (ns, overflow) = Int64(i).multipliedReportingOverflow(by: 1_000_000_000)
            guard !overflow else { throw error(name, "\(i) seconds is too long; use at most \(Int64.max / 1_000_000_000)") }
            return ns
        }
        let expected = "expected a duration such as \"250ms\", \"5s\", \"10m\", \"2h\" or \"7d\""
        guard let s = v.string else {
            if let i = v.int, i < 0 { throw error(name, "\(i) is negative; a duration is 0 or more (\(expected))") }
            throw error(name, expected)
        }
        guard let ns = ConfigValues.duration(s) else {
            throw error(name, ConfigValues.durationProblem(s).map { "\($0); \(expected)" } ?? expected)
        }
        return ns
    }

    /// A size: "512MiB", "4GiB", "1GB", or an integer number of bytes.
    mutating func size(_ name: String) throws(ConfigError) -> Int64? {
        guard let v = value(name) else { return nil }
        if let i = v.int, i >= 0 { return Int64(i) }
        guard let s = v.string, let bytes = ConfigValues.size(s) else {
            throw error(name, "expected a size such as \"512MiB\" or \"4GiB\", or a number of bytes")
        }
        return bytes
    }

    mutating func table(_ name: String) throws(ConfigError) -> TOMLReader? {
        guard let v = value(name) else { return nil }
        guard let t = v.table else { throw error(name, "expected a table, got \(v.type)") }
        return TOMLReader(file: file, path: key(name), table: t)
    }

    /// An array of tables (`[[name]]`).
    mutating func tables(_ name: String) throws(ConfigError) -> [TOMLReader] {
        guard let v = value(name) else { return [] }
        guard let array = v.array else { throw error(name, "expected [[\(key(name))]] tables, got \(v.type)") }
        var out: [TOMLReader] = []
        for (i, element) in array.enumerated() {
            guard let t = element.table else {
                throw error("\(name)[\(i)]", "expected a table, got \(element.type)")
            }
            out.append(TOMLReader(file: file, path: "\(key(name))[\(i)]", table: t))
        }
        return out
    }

    /// Every key of the table, for free-form tables such as `match`.
    var keys: [String] { table.keys.sorted() }

    /// Throws for the first key that no accessor asked for.
    func finish() throws(ConfigError) {
        for name in table.keys.sorted() where !known.contains(name) {
            throw error(name, "unknown key; check the spelling against docs/configuration.md")
        }
    }
}
