/// A configuration problem, naming the file, the key and what to do.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The config file, or "<command line>".
    public var file: String
    /// The TOML key path, e.g. `storage.durability` or `acl.rule[2].publish`.
    public var key: String
    public var message: String

    public init(file: String, key: String, message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String {
        key.isEmpty ? "\(file): \(message)" : "\(file): \(key): \(message)"
    }
}
