import Foundation

/// Finds executables built next to the test bundle (`.build/<config>/`).
/// `swift build --build-tests` builds every product, so relayd and the CLIs
/// are there when tests run.
public enum ProductLocator {
    public static var productsDirectory: URL {
        // On Linux the test runner is .build/<triple>/<config>/<Package>PackageTests.xctest.
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = runner.deletingLastPathComponent()
        if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
        return dir
    }

    /// The path of a built executable, or an error that says how to build it.
    public static func executable(_ name: String) throws -> String {
        let path = productsDirectory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ProductLocatorError(message: "\(name) is not built at \(path); run `swift build --build-tests` (make test does)")
        }
        return path
    }
}

public struct ProductLocatorError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
