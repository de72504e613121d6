// swift-tools-version:6.1
// Relay: an mTLS-only publish/subscribe relay. See README.md and docs/.
//
// This manifest is what a dependent resolves: no unsafe flags and no
// benchmark dependency, so `.package(path:)` and `.package(url:)` both work.
// - Release builds of the project's own binaries skip the runtime exclusivity
//   checks (swift_beginAccess and its access set were 4-7% of relayd's and the
//   client's CPU per message): the Makefile passes
//   `-Xswiftc -enforce-exclusivity=unchecked` (its RELEASE_FLAGS), not this
//   manifest, because SwiftPM refuses a product whose targets carry
//   `.unsafeFlags` when it comes from a URL dependency. Debug builds, which
//   every test and the sanitizer runs use, keep the checks.
// - The micro-benchmarks (ordo-one/benchmark) are their own package,
//   Benchmarks/, which depends on this one by path.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "Relay",
    platforms: [.macOS(.v14)],
    products: [
        // The client library: `import RelayClient` (docs: `make docs`).
        .library(name: "RelayClient", targets: ["RelayClient"]),
        // The broker and the command-line tools.
        .executable(name: "relayd", targets: ["relayd"]),
        .executable(name: "relay-pub", targets: ["relay-pub"]),
        .executable(name: "relay-sub", targets: ["relay-sub"]),
        .executable(name: "relayctl", targets: ["relayctl"]),
        // Not an API: the internal modules, for the Benchmarks/ package only
        // (a separate package can only reach another's modules through a
        // product). Names and contents change without notice.
        .library(
            name: "_RelayInternals",
            targets: ["RelayCore", "RelayWire", "RelayTLS", "RelayStore", "RelayPolicy", "RelayBroker"]
        ),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // RelayTestSupport only: starting the tests' child processes (relayd,
        // openssl, nats-server). No product uses them, so a dependent of
        // RelayClient does not fetch them.
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        // `make docs` only (`swift package generate-documentation`): a plugin
        // no product uses, so a dependent of RelayClient does not fetch it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // MARK: C bridges (system libraries, apt providers)
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CLMDB", pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .systemLibrary(
            name: "CNATS", pkgConfig: "libnats",
            providers: [.apt(["libnats-dev"])]
        ),

        // MARK: RelayCore — value types shared by all (no NIO, no C)
        .target(name: "RelayCore", swiftSettings: swiftSettings),
        .testTarget(name: "RelayCoreTests", dependencies: ["RelayCore"], swiftSettings: swiftSettings),

        // MARK: RelayWire
        .target(
            name: "RelayWire",
            dependencies: ["RelayCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelayWireTests",
            dependencies: [
                "RelayWire", "RelayCore", "RelayTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "relay-bench-wire",
            dependencies: [
                "RelayWire", "RelayCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // libFuzzer target when built by Fuzz/run-frame-decoder.sh (-DRELAY_FUZZ);
        // otherwise a tool that replays fuzz inputs.
        .executableTarget(
            name: "relay-fuzz-frame-decoder",
            dependencies: ["RelayWire", "RelayCore", "FuzzSupport", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/FrameDecoder",
            swiftSettings: swiftSettings
        ),
        .systemLibrary(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        // The entry points and the replay tool every fuzz target shares.
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], path: "Fuzz/Support", swiftSettings: swiftSettings),
        // The same pattern for the config parser, policy templating and DER
        // identity extraction (Fuzz/run-*.sh; checks shared with the corpus tests).
        .executableTarget(
            name: "relay-fuzz-config-parser",
            dependencies: ["RelayBroker", "RelayCore", "FuzzSupport"],
            path: "Fuzz/ConfigParser",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "relay-fuzz-policy-template",
            dependencies: ["RelayPolicy", "RelayCore", "FuzzSupport"],
            path: "Fuzz/PolicyTemplate",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "relay-fuzz-certificate-identity",
            dependencies: ["RelayTLS", "RelayCore", "FuzzSupport"],
            path: "Fuzz/CertificateIdentity",
            swiftSettings: swiftSettings
        ),

        // MARK: RelayTLS
        .target(
            name: "RelayTLS",
            dependencies: [
                "COpenSSL", "RelayCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelayTLSTests",
            dependencies: [
                "RelayTLS", "RelayCore", "RelayTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "relay-bench-tls",
            dependencies: [
                "RelayTLS", "RelayCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: RelayStore
        .target(
            name: "RelayStore",
            dependencies: [
                "CLMDB", "RelayCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "relay-store-crashchild",
            dependencies: ["RelayStore", "RelayCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "relay-bench-store",
            dependencies: [
                "RelayStore", "RelayCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // MARK: RelayJetStream — the shared log on NATS JetStream (docs/cluster.md)
        .target(
            name: "RelayJetStream",
            dependencies: [
                "CNATS", "RelayStore", "RelayCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelayStoreTests",
            // The crash child is a dependency so `swift test` always builds it next to the test bundle.
            // RelayJetStream: the MessageLog contract runs on it too, against a real nats-server.
            dependencies: ["RelayStore", "RelayJetStream", "RelayCore", "RelayTestSupport", "relay-store-crashchild",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),

        // MARK: RelayPolicy
        .target(name: "RelayPolicy", dependencies: ["RelayCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "RelayPolicyTests", dependencies: ["RelayPolicy", "RelayCore", "RelayTestSupport"],
            swiftSettings: swiftSettings
        ),

        // MARK: RelayBroker
        .target(
            name: "RelayBroker",
            dependencies: [
                "RelayCore", "RelayPolicy", "RelayTLS", "RelayWire", "RelayStore",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelayBrokerTests",
            dependencies: ["RelayBroker", "RelayTestSupport", "RelayWire", "RelayCore", "RelayTLS", "relayd",
                           // ClusterTests drive the failover with the client library's multi-address connection.
                           "RelayClient"],
            swiftSettings: swiftSettings
        ),

        // MARK: RelayClient
        .target(
            name: "RelayClient",
            dependencies: [
                "RelayCore", "RelayWire", "RelayTLS",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // Shared by relay-pub, relay-sub and relayctl: client options, exit codes, output formats.
        .target(
            name: "RelayCLISupport",
            dependencies: [
                "RelayClient", "RelayCore", "RelayWire", "RelayTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelayClientTests",
            // The executables are dependencies so `swift test` builds them next to the test bundle.
            dependencies: ["RelayClient", "RelayCLISupport", "RelayBench", "RelayTestSupport", "RelayWire", "RelayTLS", "RelayCore",
                           "relayd", "relay-pub", "relay-sub", "relayctl", "Examples",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),

        // MARK: RelayBench — load scenarios behind `relayctl bench`
        .target(
            name: "RelayBench",
            dependencies: [
                "RelayClient", "RelayTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Executables
        .executableTarget(
            name: "relayd",
            dependencies: [
                "RelayBroker", "RelayStore", "RelayJetStream", "RelayCLISupport", "RelayTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "relay-pub",
            dependencies: ["RelayCLISupport", "RelayClient", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "relay-sub",
            dependencies: ["RelayCLISupport", "RelayClient", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "relayctl",
            dependencies: [
                "RelayCLISupport", "RelayBroker", "RelayTLS", "RelayCore", "RelayPolicy", "RelayBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Examples",
            dependencies: ["RelayClient", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Long soak and leak check against the real relayd (`make soak`; not part of `make test`).
        .executableTarget(
            name: "relay-soak",
            dependencies: ["RelayClient", "RelayTestSupport",
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),

        // MARK: Test support and end-to-end tests
        .target(
            name: "RelayTestSupport",
            dependencies: [
                "RelayCore", "RelayTLS", "RelayWire",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
