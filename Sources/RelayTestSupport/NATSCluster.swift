import Foundation
import RelayTLS

/// A real 3-node NATS JetStream cluster on 127.0.0.1 for cluster-mode tests
/// (`/usr/sbin/nats-server`, Debian's 2.9.10): mutual TLS on client
/// connections (`verify: true`) and on the routes, certificates from the
/// test PKI, one store directory per node. `kill(_:)` is kill -9,
/// `restart(_:)` brings a node back on the same ports and store.
/// Use it through `withNATSCluster { cluster in … }`, which tears it down.
public final class NATSCluster: @unchecked Sendable {
    // @unchecked: the nodes' processes are replaced only by the test that
    // owns the cluster, between awaits (as RelaydFixture).

    /// One nats-server: its ports, files and current process.
    public struct Node: Sendable {
        public let index: Int
        /// `server_name`, also what /jsz reports as a leader.
        public let name: String
        public let clientPort: Int
        public let routePort: Int
        public let monitorPort: Int
        public let configPath: String
        public let storeDirectory: String
        /// `tls://127.0.0.1:<clientPort>`.
        public var url: String { "tls://127.0.0.1:\(clientPort)" }
    }

    public let pki: TLSTestPKI
    public let directory: TemporaryDirectory
    public let nodes: [Node]
    /// The nodes' certificate: serverAuth and clientAuth (each node dials the
    /// others' routes), IP SAN 127.0.0.1 (nats.c checks it by default).
    public let nodeCertificate: TLSTestPKI.Files
    /// A client certificate NATS accepts (for relayd's `[storage]` NATS
    /// connection and direct nats.c clients).
    public let clientCertificate: TLSTestPKI.Files
    private var processes: [ChildProcess?]
    private var earlier: [(Int, ChildProcess)] = []

    /// Every node's client URL, comma-separated (the form relayd and nats.c take).
    public var urls: String { nodes.map(\.url).joined(separator: ",") }

    /// - Parameter nodeRequest: the nodes' certificate (tests of the
    ///   fixture pass one without clientAuth to see the routes refused).
    public init(pki: TLSTestPKI? = nil, size: Int = 3, name: String = "relaytest",
                nodeRequest: CertificateRequest = .natsNode) throws {
        let pki = try pki ?? TLSTestPKI()
        self.pki = pki
        directory = try TemporaryDirectory(prefix: "nats-cluster")
        nodeCertificate = try pki.add("nats-node", nodeRequest)
        clientCertificate = try pki.add("nats-client", .client(commonName: "relayd-nats-client"))
        // Three ports per node chosen up front (the route list must name them
        // all before any node starts); another process could take one in
        // between, which start() reports with nats-server's own message.
        // Outside the ephemeral range: a node killed with -9 is relaunched on
        // the same ports, and no client socket may take them meanwhile.
        let ports = try StablePorts.reserve(3 * size)
        var nodes: [Node] = []
        for index in 0..<size {
            let node = Node(index: index, name: "n\(index + 1)", clientPort: ports[3 * index],
                            routePort: ports[3 * index + 1], monitorPort: ports[3 * index + 2],
                            configPath: directory.file("n\(index + 1).conf"),
                            storeDirectory: directory.file("store-n\(index + 1)"))
            nodes.append(node)
        }
        self.nodes = nodes
        processes = Array(repeating: nil, count: size)
        for node in nodes {
            try Self.config(for: node, all: nodes, cluster: name, pki: pki, certificate: nodeCertificate)
                .write(toFile: node.configPath, atomically: true, encoding: .utf8)
        }
    }

    /// The node's config: mTLS for clients and routes, every route listed
    /// (its own is ignored by nats-server), `no_advertise` so clients are
    /// never told about URLs other than those they were given.
    static func config(for node: Node, all: [Node], cluster: String, pki: TLSTestPKI,
                       certificate: TLSTestPKI.Files) -> String {
        let tls = """
        tls {
            cert_file: "\(certificate.certificate)"
            key_file: "\(certificate.key)"
            ca_file: "\(pki.ca.certificate)"
            verify: true
            timeout: 5
          }
        """
        let routes = all.map { "\"tls://127.0.0.1:\($0.routePort)\"" }.joined(separator: ", ")
        return """
        server_name: \(node.name)
        listen: 127.0.0.1:\(node.clientPort)
        http: 127.0.0.1:\(node.monitorPort)
        \(tls)
        jetstream {
          store_dir: "\(node.storeDirectory)"
        }
        cluster {
          name: \(cluster)
          listen: 127.0.0.1:\(node.routePort)
          no_advertise: true
          \(tls)
          routes: [\(routes)]
        }
        """
    }

    // MARK: Processes

    /// Starts every node and waits until the cluster has formed (`waitUntilFormed`).
    public func start(timeout: Double = 30) async throws {
        for node in nodes { try await launch(node.index) }
        try await waitUntilFormed(timeout: timeout)
    }

    /// Starts node `index` (after `kill`) on its ports and store; does not wait.
    public func launch(_ index: Int) async throws {
        if let old = processes[index] { earlier.append((index, old)) }
        processes[index] = try await ChildProcess(Self.serverPath, ["-c", nodes[index].configPath])
    }

    /// kill -9 of node `index`, waiting for its exit (nothing of its shutdown runs).
    public func kill(_ index: Int) async {
        processes[index]?.signal(SIGKILL)
        _ = await processes[index]?.waitForExit(timeout: 30)
    }

    /// kill -9, then start again and wait until the cluster has formed with it.
    public func restart(_ index: Int, timeout: Double = 30) async throws {
        await kill(index)
        try await launch(index)
        try await waitUntilFormed(timeout: timeout)
    }

    public func isRunning(_ index: Int) -> Bool { processes[index]?.isRunning ?? false }
    public var runningIndices: [Int] { nodes.indices.filter(isRunning) }

    /// Kills every node and removes the stores, configs and PKI.
    public func stop() async {
        for index in nodes.indices { await kill(index) }
        directory.remove()
        pki.remove()
    }

    /// Every node's output, every run, for failure messages.
    public var log: String {
        let runs = earlier + processes.enumerated().compactMap { entry in entry.element.map { (entry.offset, $0) } }
        return runs.map { "\(nodes[$0.0].name) (pid \($0.1.pid)):\n\($0.1.transcript)" }.joined(separator: "\n")
    }

    static var serverPath: String {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/nats-server"
    }
}

extension CertificateRequest {
    /// A NATS node certificate: serverAuth for clients and incoming routes,
    /// clientAuth because each node also dials the others' routes.
    public static var natsNode: CertificateRequest {
        var request = CertificateRequest(subject: [[NameAttribute("CN", "nats-node")]],
                                         subjectAlternativeNames: [.dns("localhost"), .ip("127.0.0.1")],
                                         extendedKeyUsage: [.serverAuth, .clientAuth])
        request.setValidity(days: 30)
        return request
    }
}

