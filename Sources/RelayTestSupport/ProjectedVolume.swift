import Foundation

/// A Kubernetes Secret/ConfigMap volume: every key is a symlink through
/// `..data`, which points at a timestamped directory; an update writes a new
/// directory and swaps `..data` atomically (rename of a new symlink).
public struct ProjectedVolume: Sendable {
    public let directory: String
    public private(set) var generation = 0

    public init(directory: String, files: [String: String]) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try publish(files)
        for name in files.keys {
            try FileManager.default.createSymbolicLink(atPath: "\(directory)/\(name)", withDestinationPath: "..data/\(name)")
        }
    }

    public func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// Writes a new `..2026_<n>` directory and renames a fresh `..data_tmp`
    /// link over `..data`, as kubelet's AtomicWriter does.
    public mutating func publish(_ files: [String: String]) throws {
        generation += 1
        let name = String(format: "..2026_12_03_%06d", generation)
        try FileManager.default.createDirectory(atPath: "\(directory)/\(name)", withIntermediateDirectories: false)
        for (file, content) in files {
            try content.write(toFile: "\(directory)/\(name)/\(file)", atomically: false, encoding: .utf8)
        }
        let temporary = "\(directory)/..data_tmp"
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: name)
        guard rename(temporary, "\(directory)/..data") == 0 else {
            throw RelaydFixtureError(message: "rename of \(temporary) over \(directory)/..data failed: errno \(errno)")
        }
    }
}

