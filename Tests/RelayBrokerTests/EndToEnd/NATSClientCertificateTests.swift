import Foundation
import RelayCore
import RelayTLS
import RelayTestSupport
import Testing

/// The certificate an edge presents to NATS (`[storage.jetstream]
/// certificate`). nats.c loads it when relayd connects and presents it at
/// every reconnect of that connection. When it lapses, the edge keeps its
/// open connection but NATS refuses the next one (a NATS restart or a
/// network blip then takes the edge down). Before wave 17 nothing said so:
/// no warning before the lapse, none at it, and a renewed file on disk was
/// silently ignored; since wave 20 a reload takes renewed files
/// (NATSCertificateRenewalTests; docs/cluster.md, "Renewing the edge's NATS
/// certificate").
@Suite("relayd edge: the certificate it presents to NATS", .serialized)
struct NATSClientCertificateTests {
    @Test("a NATS client certificate inside 7 days is announced at start, its notAfter is a gauge, and its lapse is an error at that second")
    func expiryIsAnnounced() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let client = try nats.pki.addShortLived("nats-edge", validFor: 14)
        let notAfter = try Identity(pem: client.issued.certificatePEM).notAfter
        let edge = try RelaydFixture(pki: nats.pki, metrics: true)
        try edge.useJetStream(nats, client: client)
        try await withRelayd(edge) { edge in
            let lines = { edge.log.split(separator: "\n").map(String.init) }
            let soonLine = { lines().first { $0.contains("the certificate relayd presents to NATS expires soon") } }
            let lapsedLine = { lines().first { $0.contains("the certificate relayd presents to NATS has expired") } }
            #expect(Date() < notAfter, "relayd took until the certificate's notAfter to start; the test cannot tell the lines apart")
            // Logged before "listening", but relayd's stderr is read by another task and may
            // lag behind stdout on a loaded machine (it did once in CI): wait for the line.
            let announced = await eventually(timeout: 10, every: 0.05) { soonLine() != nil }
            let soon = try #require(announced ? soonLine() : nil,
                                    "no warning at start for a NATS certificate 14 s from its end:\n\(edge.log)")
            #expect(soon.contains("level=warning") && soon.contains(client.certificate) && soon.contains("reload relayd"), "\(soon)")
            let soonAt = try #require(RelaydLogLine.timestamp(soon), "no ts= in \(soon)")
            #expect(soonAt < notAfter, "the 'soon' warning was logged at \(soonAt), not before notAfter \(notAfter)")
            #expect(lapsedLine() == nil, "'has expired' before the certificate lapsed:\n\(edge.log)")

            let gauge = try await edge.metric("relay_nats_client_certificate_not_after_seconds")
            #expect(gauge == notAfter.timeIntervalSince1970, "gauge \(String(describing: gauge)), notAfter \(notAfter)")

            // The line is the event (polled); its own timestamp says when relayd logged it.
            let lapsed = await eventually(timeout: 40, every: 0.05) { lapsedLine() != nil }
            #expect(lapsed, "no line when the NATS certificate lapsed (notAfter \(notAfter)):\n\(edge.log)")
            let line = try #require(lapsedLine(), "no 'has expired' line")
            #expect(line.contains("level=error") && line.contains(client.certificate), "\(line)")
            let loggedAt = try #require(RelaydLogLine.timestamp(line), "no ts= in \(line)")
            #expect(loggedAt >= notAfter, "logged at \(loggedAt), before notAfter \(notAfter)")
            #expect(loggedAt.timeIntervalSince(notAfter) < 5, "logged at \(loggedAt), not at notAfter \(notAfter)")
        }
    }

    @Test("a renewed NATS certificate and key written over the configured files: the watcher's reload takes them, naming the files, and restart_required stays empty")
    func renewedFilesAreTakenByTheWatcher() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let client = try nats.pki.add("nats-edge", .client(commonName: "nats-edge"))
        let edge = try RelaydFixture(pki: nats.pki)
        try edge.useJetStream(nats, extra: "[reload]\nwatch = true", client: client)
        try await withRelayd(edge) { edge in
            let publisher = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await publisher.hello()
            #expect(try await publisher.publish("renew.t", count: 3).count == 3)
            #expect(!edge.log.contains("configuration reloaded"), "a reload before anything changed:\n\(edge.log)")

            // What cert-manager does: a new certificate and key, each replaced by a rename.
            // A reload between the two renames (new key, old certificate) is refused; the next one takes both.
            let renewed = try nats.pki.add("nats-edge-renewed", .client(commonName: "nats-edge"))
            for (from, to) in [(renewed.key, client.key), (renewed.certificate, client.certificate)] {
                try Data(contentsOf: URL(fileURLWithPath: from)).write(to: URL(fileURLWithPath: to), options: .atomic)
            }
            let lines = { edge.log.split(separator: "\n").map(String.init) }
            let takenLine = { lines().first { $0.contains("relayd presents the renewed NATS certificate") } }
            let taken = await eventually(timeout: 20, every: 0.05) { takenLine() != nil }
            #expect(taken, "the watcher's reload did not take the renewed NATS files:\n\(edge.log)")
            let notice = try #require(takenLine())
            #expect(notice.contains(client.certificate) && notice.contains(client.key) && !notice.contains(nats.pki.ca.certificate),
                    "the line must name the two changed files, not the unchanged CA: \(notice)")
            // relayd logs the reload's line after the renewal's, in a later write:
            // waited for as its own event (a clean-clone CI run read the log
            // between the two lines and found no reload line).
            let reloadedLine = await eventuallyValue(timeout: 20, every: 0.05) { lines().last { $0.contains("configuration reloaded") } }
            let reloaded = try #require(reloadedLine, "no reload line:\n\(edge.log)")
            #expect(reloaded.contains("restart_required=none"), "\(reloaded)")
            // The edge keeps working, now on the new connection.
            #expect(try await publisher.publish("renew.t", count: 3, firstID: 10).count == 3)
            await publisher.close()
        }
    }

    @Test("--check-config refuses NATS files that cannot work: a missing certificate, a key of another certificate, an expired certificate (78, naming the file)")
    func checkConfigChecksNATSFiles() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let good = try pki.add("nats-edge", .client(commonName: "nats-edge"))
        let other = try pki.add("nats-other", .client(commonName: "nats-other"))
        var lapsed = CertificateRequest.client(commonName: "nats-expired")
        lapsed.setValidity(days: 1, startingInDays: -2)
        let expired = try pki.add("nats-expired", lapsed)
        let missing = pki.directory.file("nats-missing.pem")
        let cases: [(certificate: String, key: String, says: [String])] = [
            (good.certificate, good.key, []),
            (missing, good.key, ["storage.jetstream.certificate", missing, "does not exist"]),
            (good.certificate, other.key, ["storage.jetstream", other.key, "does not match certificate \(good.certificate)"]),
            (expired.certificate, expired.key, ["storage.jetstream.certificate", expired.certificate, "has expired", "CN=nats-expired"]),
        ]
        for (certificate, key, says) in cases {
            let edge = try RelaydFixture(pki: pki)
            edge.storageExtra = """
            backend = "jetstream"

            [storage.jetstream]
            servers = ["tls://127.0.0.1:4222"]
            ca = "\(pki.ca.certificate)"
            certificate = "\(certificate)"
            private_key = "\(key)"
            """
            try edge.writeConfig()
            let run = try await SingleInstanceTests.runToExit(["--config", edge.configPath, "--check-config"])
            if says.isEmpty {
                #expect(run.status == 0, "good NATS files refused:\n\(run.transcript)")
                continue
            }
            #expect(run.status == 78, "\(certificate) with \(key): exit \(run.status.map(String.init) ?? "none"):\n\(run.transcript)")
            for text in says {
                #expect(run.transcript.contains(text), "\(certificate) with \(key): no '\(text)' in:\n\(run.transcript)")
            }
        }
    }

    @Test("relayd started with an expired NATS certificate exits at once with 78, naming the file, instead of waiting for NATS")
    func expiredAtStartIsRefused() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        var lapsed = CertificateRequest.client(commonName: "nats-expired")
        lapsed.setValidity(days: 1, startingInDays: -2)
        let expired = try nats.pki.add("nats-expired", lapsed)
        let edge = try RelaydFixture(pki: nats.pki)
        try edge.useJetStream(nats, client: expired)
        let started = Date()
        let run = try await SingleInstanceTests.runToExit(["--config", edge.configPath, "--init"])
        #expect(run.status == 78, "exit \(run.status.map(String.init) ?? "none within 20 s"):\n\(run.transcript)")
        #expect(Date().timeIntervalSince(started) < 15, "relayd took \(Date().timeIntervalSince(started)) s to give up")
        #expect(run.transcript.contains(expired.certificate) && run.transcript.contains("has expired"), "\(run.transcript)")
    }
}
