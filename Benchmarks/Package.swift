// swift-tools-version:6.1
// Relay's micro-benchmarks (ordo-one/benchmark), a package of their own so
// that the benchmark dependency is never resolved by a dependent of Relay.
// It depends on the root package by path and reaches the internal modules
// through its `_RelayInternals` product. Run from the repository root:
//   make bench-micro
// or from this directory:
//   swift package --disable-sandbox benchmark --target RelayMicroBenchmarks
import PackageDescription

let package = Package(
    name: "RelayBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Relay", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // Exact: its Package.swift changes its traits and dependencies between
        // releases. Only the MallocInterposer trait (allocation counts): the
        // default also enables RuntimeInterposer, whose
        // swift-runtime-interposer package (ARC counts on Linux with Swift 6.3,
        // which no benchmark here uses) is then pruned.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The benchmark plugins only take a target whose directory's parent is
        // named `Benchmarks`, hence the path.
        .executableTarget(
            name: "RelayMicroBenchmarks",
            dependencies: [
                .product(name: "_RelayInternals", package: "Relay"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Benchmarks/RelayMicroBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
