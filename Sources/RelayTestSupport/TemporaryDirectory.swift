import Foundation

/// A fresh directory under the system temp dir, removed by ``remove()``.
/// Tests use it for LMDB data directories, generated PKI and configs.
public struct TemporaryDirectory: Sendable {
    public let url: URL
    public var path: String { url.path }

    public init(prefix: String = "relay-test") throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory(), isDirectory: true)
        let url = base.appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        self.url = url
    }

    /// A path inside the directory (not created).
    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Writes each named file with a one-byte body: the placeholders a
    /// configuration must point at when the test does not read them. Throws
    /// when one cannot be written, so no test goes on with a file missing
    /// (`FileManager.createFile` only returned false, and it was ignored).
    public func createPlaceholders(_ names: [String]) throws {
        for name in names { try Data("x".utf8).write(to: url.appendingPathComponent(name)) }
    }

    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}
