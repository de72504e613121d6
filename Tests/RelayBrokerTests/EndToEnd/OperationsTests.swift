import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayBroker
import RelayTestSupport
import Testing

/// Issue 18 item 9 against the real relayd: sd_notify states, audit
/// rotation by rename and SIGHUP, relative paths against the config's
/// folder, and `make install` with a unit `systemd-analyze verify` accepts.
@Suite("relayd end to end: systemd, audit rotation, paths, install", .serialized)
struct OperationsTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A unix datagram socket standing in for systemd's $NOTIFY_SOCKET; it keeps every datagram as text.
    final class NotifySocket: Sendable {
        let path: String
        let channel: any Channel
        let received: NIOLockedValueBox<[String]>

        init(path: String) async throws {
            let received = NIOLockedValueBox<[String]>([])
            self.path = path
            self.received = received
            channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                    }
                }
                .bind(unixDomainSocketPath: path).get()
        }

        var messages: [String] { received.withLockedValue { $0 } }

        /// Polls until a datagram after the first `skip` ones starts with `prefix` (datagrams are the event).
        func wait(for prefix: String, after skip: Int = 0) async -> Bool {
            await eventually(timeout: 20, every: 0.02) { self.messages.dropFirst(skip).contains { $0.hasPrefix(prefix) } }
        }

        final class Collector: ChannelInboundHandler, Sendable {
            typealias InboundIn = AddressedEnvelope<ByteBuffer>
            let received: NIOLockedValueBox<[String]>
            init(received: NIOLockedValueBox<[String]>) { self.received = received }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                let text = String(buffer: unwrapInboundIn(data).data)
                received.withLockedValue { $0.append(text) }
            }
        }
    }

    @Test("under Type=notify relayd sends READY=1 once listening, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM")
    func sdNotify() async throws {
        try await withRelayd(start: false) { relayd in
            let socket = try await NotifySocket(path: relayd.directory.file("notify.sock"))
            defer { socket.channel.close(promise: nil) }
            let child = try await ChildProcess(try ProductLocator.executable("relayd"),
                                         ["--init", "--config", relayd.configPath, "--listen", "127.0.0.1:0"],
                                         environment: ["NOTIFY_SOCKET": socket.path])
            defer { child.signal(SIGKILL) }
            let listening = await child.waitForLine(timeout: 30) { RelaydLogLine.listeningPort($0) != nil }
            #expect(listening != nil, "\(child.transcript)")
            #expect(await socket.wait(for: "READY=1"), "\(socket.messages)")
            let ready = socket.messages.first { $0.hasPrefix("READY=1") } ?? ""
            #expect(ready.contains("MAINPID=\(child.pid)"), "\(ready)")

            let before = socket.messages.count
            child.signal(SIGHUP)
            #expect(await socket.wait(for: "READY=1", after: before), "\(socket.messages)")
            let afterHup = Array(socket.messages.dropFirst(before))
            #expect(afterHup.first?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true, "\(afterHup)")

            let beforeStop = socket.messages.count
            child.signal(SIGTERM)
            #expect(await socket.wait(for: "STOPPING=1", after: beforeStop), "\(socket.messages)")
            #expect(await child.waitForExit(timeout: 30) == 0, "\(child.transcript)")
        }
    }

    @Test("audit rotation: rename the trail, SIGHUP, new lines go to a new file at the path and the chain verifies across both")
    func auditReopenOnSighup() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            let archived = relayd.auditPath + ".000001"  // the name rotation gives, so `audit verify` walks both
            // The old file must hold at least one event before the rename.
            let started = await relayd.waitForAudit { $0.event == "broker_started" }
            #expect(started != nil)
            #expect(rename(relayd.auditPath, archived) == 0)
            relayd.reload()
            let reopened = await relayd.waitForAudit { $0.event == "trail_reopened" }
            #expect(reopened?["path"] == relayd.auditPath)
            await client.close()
            #expect(await relayd.terminate() == 0)

            let oldLines = try String(contentsOfFile: archived, encoding: .utf8).split(separator: "\n")
            let newEvents = relayd.auditEvents()
            #expect(!oldLines.isEmpty && newEvents.count >= 3, "\(newEvents.map(\.fields))")  // reopened, reload, session_ended, stopped
            let lastOldLine = try #require(oldLines.last)
            let lastOld = try #require(AuditEvent(line: 0, text: String(lastOldLine)))
            #expect(Int(newEvents.first?["seq"] ?? "") == (Int(lastOld["seq"] ?? "") ?? -1) + 1)
            #expect(newEvents.first?["prev"] == lastOld["mac"])
            let report = try AuditVerifier.verify(path: relayd.auditPath, key: try AuditKey.load(path: relayd.auditKeyPath))
            #expect(report.files == [archived, relayd.auditPath])
            #expect(report.lines == oldLines.count + newEvents.count && report.firstSeq == 1)
            let verify = try await ChildProcess(try ProductLocator.executable("relayctl"), ["audit", "verify", "--config", relayd.configPath])
            #expect(await verify.waitForExit(timeout: 60) == 0, "\(verify.transcript)")
        }
    }

    @Test("relative paths in the config are resolved against its folder, not relayd's working directory")
    func relativePathsFromAnotherDirectory() async throws {
        let pki = try TLSTestPKI()
        let site = try TemporaryDirectory(prefix: "relay-site")
        let elsewhere = try TemporaryDirectory(prefix: "relay-cwd")
        defer { pki.remove(); site.remove(); elsewhere.remove() }
        try FileManager.default.createDirectory(atPath: site.file("pki"), withIntermediateDirectories: false)
        for (name, path) in [("server.pem", pki.server.certificate), ("server.key", pki.server.key), ("ca.pem", pki.ca.certificate)] {
            try FileManager.default.copyItem(atPath: path, toPath: site.file("pki/\(name)"))
        }
        try """
        [server]
        listen = "127.0.0.1:0"
        [tls]
        certificate = "pki/server.pem"
        private_key = "pki/server.key"
        client_ca = ["pki/ca.pem"]
        [storage]
        path = "data"
        [metrics]
        listen = ""
        [audit]
        path = "audit/trail.jsonl"
        \(RelaydFixture.allowAll)
        """.write(toFile: site.file("relay.toml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: site.file("audit"), withIntermediateDirectories: false)
        let child = try await ChildProcess(try ProductLocator.executable("relayd"),
                                     ["--init", "--config", site.file("relay.toml")], currentDirectory: elsewhere.path)
        defer { child.signal(SIGKILL) }
        let line = await child.waitForLine(timeout: 30) { RelaydLogLine.listeningPort($0) != nil }
        #expect(line != nil, "\(child.transcript)")
        #expect(FileManager.default.fileExists(atPath: site.file("data/relayd.lock")))
        #expect(FileManager.default.fileExists(atPath: site.file("audit/trail.jsonl")))
        let strays = try FileManager.default.contentsOfDirectory(atPath: elsewhere.path)
        #expect(strays.isEmpty, "relayd wrote into its working directory: \(strays)")
        child.signal(SIGTERM)
        #expect(await child.waitForExit(timeout: 30) == 0, "\(child.transcript)")
    }

    @Test("make install PREFIX=… installs the binaries, the unit (rewritten to PREFIX, hardened, verified) and the example config")
    func makeInstall() async throws {
        let prefix = try TemporaryDirectory(prefix: "relay-prefix")
        defer { prefix.remove() }
        let make = try await ChildProcess("/usr/bin/env", ["make", "--no-print-directory", "-C", Self.repository.path, "install",
                                                     "PREFIX=\(prefix.path)", "INSTALL_SKIP_BUILD=1",
                                                     "INSTALL_FROM=\(ProductLocator.productsDirectory.path)"])
        #expect(await make.waitForExit(timeout: 60) == 0, "\(make.transcript)")
        for binary in ["relayd", "relayctl", "relay-pub", "relay-sub"] {
            #expect(FileManager.default.isExecutableFile(atPath: prefix.file("bin/\(binary)")), "\(binary) not installed")
        }
        #expect(FileManager.default.fileExists(atPath: prefix.file("etc/relay/relay.toml.example")))
        let unitPath = prefix.file("lib/systemd/system/relayd.service")
        let unit = try String(contentsOfFile: unitPath, encoding: .utf8)
        #expect(unit.contains("ExecStart=\(prefix.path)/bin/relayd --config \(prefix.path)/etc/relay/relay.toml"), "\(unit)")
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict", "NoNewPrivileges=true",
                     "ReadWritePaths=/var/lib/relay /var/log/relay", "User=relay", "RestartPreventExitStatus=66 75 78"] {
            let present = unit.split(separator: "\n").contains { $0 == line }
            #expect(present, "the unit lacks \(line)")
        }
        let help = try await ChildProcess(prefix.file("bin/relayd"), ["--help"])
        #expect(await help.waitForExit(timeout: 30) == 0)
        // systemd-analyze checks the syntax, every directive and that ExecStart is executable.
        // --man=no: the man pages are installed only when `make man` ran (make check-install, part of
        // make test, installs and checks them).
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            Issue.record("systemd-analyze is not installed; the unit was not verified")
            return
        }
        let analyze = try await ChildProcess("/usr/bin/systemd-analyze", ["verify", "--man=no", unitPath])
        #expect(await analyze.waitForExit(timeout: 60) == 0, "\(analyze.transcript)")
    }
}
