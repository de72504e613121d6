import Foundation
import RelayTLS
import RelayTestSupport
import Testing

/// Issue #20: a renewed NATS client certificate is picked up by a reload,
/// without restarting relayd. The edge starts with certificate A (issued by
/// CA1) while nats-server trusts CA1 and CA2; A is replaced on disk by B
/// (issued by CA2), relayd reloads, then nats-server restarts trusting only
/// CA2, so the edge's next connection passes only if it presents B. Before,
/// nats.c kept presenting A at every reconnect (it loads the files once) and
/// the edge stayed down until a restart (docs/cluster.md, "Renewing the
/// edge's NATS certificate").
@Suite("relayd edge: a renewed NATS certificate taken by a reload", .serialized)
struct NATSCertificateRenewalTests {
    /// How the renewed files reach the configured paths.
    enum Delivery: String, CaseIterable, Sendable {
        /// Written over the configured files, key first (a cert-manager CSI driver, an operator's cp).
        case inPlace
        /// A Kubernetes Secret volume: a new `..data` directory swapped in by a rename.
        case projectedVolume
        /// Written to new files, and the config changed to name them (a
        /// renewal tool that writes dated file names). Before wave 22 this
        /// waited for a restart (`restart_required=storage`).
        case newPaths
    }

    /// The edge's NATS client files and a way to replace their contents.
    struct EdgeFiles {
        var files: TLSTestPKI.Files
        var volume: ProjectedVolume?
        /// ``Delivery/newPaths``: each replacement goes to files of its own.
        var newPaths = false
        private var renewals = 0

        init(_ certificate: TLSTestPKI.Files, delivery: Delivery, in pki: TLSTestPKI) throws {
            files = certificate
            switch delivery {
            case .inPlace, .newPaths:
                (files.certificate, files.key) = (pki.directory.file("edge-nats.pem"), pki.directory.file("edge-nats.key"))
                try Self.write(certificate, over: files)
                self.newPaths = delivery == .newPaths
            case .projectedVolume:
                let volume = try ProjectedVolume(directory: pki.directory.file("edge-nats-secret"),
                                                 files: try Self.contents(certificate))
                (files.certificate, files.key) = (volume.path("tls.crt"), volume.path("tls.key"))
                self.volume = volume
            }
        }

        static func contents(_ files: TLSTestPKI.Files) throws -> [String: String] {
            ["tls.crt": try String(contentsOfFile: files.certificate, encoding: .utf8),
             "tls.key": try String(contentsOfFile: files.key, encoding: .utf8)]
        }

        /// In place, no rename: the key, then the certificate.
        static func write(_ source: TLSTestPKI.Files, over target: TLSTestPKI.Files, keyOnly: Bool = false) throws {
            try Data(contentsOf: URL(fileURLWithPath: source.key)).write(to: URL(fileURLWithPath: target.key))
            guard !keyOnly else { return }
            try Data(contentsOf: URL(fileURLWithPath: source.certificate)).write(to: URL(fileURLWithPath: target.certificate))
        }

        mutating func replace(with source: TLSTestPKI.Files, keyOnly: Bool = false) throws {
            if newPaths {
                renewals += 1
                let directory = URL(fileURLWithPath: files.certificate).deletingLastPathComponent().path
                var target = source
                (target.certificate, target.key) = ("\(directory)/edge-nats-\(renewals).pem", "\(directory)/edge-nats-\(renewals).key")
                if keyOnly { try Data(contentsOf: URL(fileURLWithPath: files.certificate)).write(to: URL(fileURLWithPath: target.certificate)) }
                try Self.write(source, over: target, keyOnly: keyOnly)
                files = target
            } else if var volume {
                var files = try Self.contents(source)
                if keyOnly { files["tls.crt"] = try String(contentsOfFile: self.files.certificate, encoding: .utf8) }
                try volume.publish(files)
                self.volume = volume
            } else {
                try Self.write(source, over: files, keyOnly: keyOnly)
            }
        }
    }

    /// In an expected reason: the path of the certificate file the edge is configured with at that moment.
    static let currentCertificate = "<the configured certificate>"

    static func lines(_ edge: RelaydFixture, containing text: String) -> [String] {
        edge.log.split(separator: "\n").map(String.init).filter { $0.contains(text) }
    }

    /// Sends SIGHUP and returns the reload's line ("configuration reloaded" or "reload refused").
    static func reload(_ edge: RelaydFixture) async throws -> String {
        let kinds = ["configuration reloaded", "reload refused"]
        let before = kinds.map { lines(edge, containing: $0).count }
        edge.reload()
        let line = await eventuallyValue(timeout: 20, every: 0.05) { () -> String? in
            for (kind, count) in zip(kinds, before) {
                let now = lines(edge, containing: kind)
                if now.count > count { return now.last }
            }
            return nil
        }
        return try #require(line, "no reload line after SIGHUP:\n\(edge.log)")
    }

    /// Restarts nats-server trusting `clientCA` for clients, after the edge
    /// saw the outage (not ready). With `waitForReady`, also waits for the
    /// edge to be ready again; returns whether it was.
    static func restartNATS(_ nats: SingleNATSServer, trusting clientCA: String, edge: RelaydFixture,
                            waitForReady: Bool = true) async throws -> Bool {
        await nats.kill()
        let down = await eventually(timeout: 15, every: 0.05) { !(await edge.isReady()) }
        #expect(down, "the edge stayed ready with NATS killed:\n\(edge.log)")
        nats.clientCA = clientCA
        try await nats.restart()
        guard waitForReady else { return false }
        return await eventually(timeout: 15, every: 0.05) { await edge.isReady() }
    }

    @Test("a renewed certificate from another CA, reloaded: after NATS restarts trusting only that CA the edge reconnects, and every publish is acknowledged and delivered once, in order",
          arguments: Delivery.allCases)
    func renewedCertificateIsPresentedAfterReload(delivery: Delivery) async throws {
        let pki = try TLSTestPKI()
        let ca2 = try TLSTestPKI.write(try DevelopmentPKI.createCA(commonName: "NATS client CA 2"), name: "nats-ca2", in: pki.directory)
        let both = pki.directory.file("nats-client-cas.pem")
        try (try String(contentsOfFile: pki.ca.certificate, encoding: .utf8) + String(contentsOfFile: ca2.certificate, encoding: .utf8))
            .write(toFile: both, atomically: true, encoding: .utf8)
        let nats = try await SingleNATSServer(pki: pki, clientCA: both)
        let certificateA = try pki.add("nats-edge-a", .client(commonName: "nats-edge"))
        let certificateB = try pki.add("nats-edge-b", .client(commonName: "nats-edge"), signedBy: ca2.issued)
        var files = try EdgeFiles(certificateA, delivery: delivery, in: pki)
        let edge = try RelaydFixture(pki: pki, metrics: true)
        try edge.useJetStream(nats, publishTimeout: "4s", client: files.files)
        try await withRelayd(edge) { edge in
            let subscriber = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await subscriber.hello()
            #expect(try await subscriber.subscribe(1, "renew.>", from: .earliest).isAccepted)
            let publisher = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await publisher.hello()
            var acked = try await publisher.publish("renew.a", count: 3).map(\.sequence)

            // Renewed while publishes are in flight: 200 in one write, then the reload.
            try files.replace(with: certificateB)
            if delivery == .newPaths { try edge.useJetStream(nats, publishTimeout: "4s", client: files.files) }
            let burst = Task { try await publisher.publish("renew.burst", count: 200, firstID: 100) }
            let reloadLine = try await Self.reload(edge)
            #expect(reloadLine.contains("configuration reloaded") && reloadLine.contains("restart_required=none"),
                    "the renewal was not applied, or still waits for a restart: \(reloadLine)")
            acked += try await burst.value.map(\.sequence)
            #expect(acked.count == 203)
            // The trail is written on its own queue: wait for the line.
            let auditLine = await eventuallyValue(timeout: 10, every: 0.05) {
                edge.auditLines().last { $0.contains("\"reload\"") && $0.contains("\"applied\"") }
            }
            #expect(auditLine?.contains("nats_client_renewed") == true && auditLine?.contains(files.files.key) == true,
                    "the trail's reload line does not name the renewed NATS files: \(auditLine ?? "none")")
            let renewed = Self.lines(edge, containing: "relayd presents the renewed NATS certificate")
            #expect(renewed.count == 1 && renewed.first?.contains(files.files.certificate) == true,
                    "no line saying the renewed certificate is in use:\n\(edge.log)")
            // Counted for alerting: one renewal taken, none refused.
            #expect(try await edge.metric("relay_nats_client_renewals_total{result=\"taken\"}") == 1)
            #expect(try await edge.metric("relay_nats_client_renewals_total{result=\"refused\"}") == 0)

            // Only B passes now.
            let ready = try await Self.restartNATS(nats, trusting: ca2.certificate, edge: edge)
            #expect(ready, "the edge did not reconnect to NATS trusting only the renewed certificate's CA:\n\(edge.log)")
            let after = try? await publisher.publish("renew.b", count: 3, firstID: 1_000)
            #expect(after?.count == 3, "publishes after NATS restarted trusting only CA2 were not acknowledged:\n\(edge.log)")
            acked += after?.map(\.sequence) ?? []

            // Everything acknowledged, once each, in order, then nothing else before the marker.
            let expected = acked.count
            let delivered = try await subscriber.messages(expected)
            #expect(delivered.map(\.sequence) == acked.sorted(), "delivered \(delivered.map(\.sequence)), acknowledged \(acked.sorted())")
            #expect(Set(acked).count == acked.count, "a sequence acknowledged twice: \(acked)")
            _ = try await publisher.publish("renew.marker", count: 1, firstID: 5_000)
            let next = try await subscriber.messages(1)
            #expect(next.first?.topic == "renew.marker", "a message between the last publish and the marker: \(next)")
            await publisher.close()
            await subscriber.close()
        }
    }

    @Test("renewed too late: NATS already refuses the edge's certificate and a publish is waiting; the reload brings the edge back and that publish is acknowledged once",
          arguments: [Delivery.inPlace, .newPaths])
    func renewalBringsADownEdgeBack(delivery: Delivery) async throws {
        let pki = try TLSTestPKI()
        let ca2 = try TLSTestPKI.write(try DevelopmentPKI.createCA(commonName: "NATS client CA 2"), name: "nats-ca2", in: pki.directory)
        let nats = try await SingleNATSServer(pki: pki)
        let certificateA = try pki.add("nats-edge-a", .client(commonName: "nats-edge"))
        let certificateB = try pki.add("nats-edge-b", .client(commonName: "nats-edge"), signedBy: ca2.issued)
        var files = try EdgeFiles(certificateA, delivery: delivery, in: pki)
        let edge = try RelaydFixture(pki: pki, metrics: true)
        try edge.useJetStream(nats, publishTimeout: "15s", client: files.files)
        try await withRelayd(edge) { edge in
            let subscriber = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await subscriber.hello()
            #expect(try await subscriber.subscribe(1, "late.>", from: .earliest).isAccepted)
            let publisher = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await publisher.hello()
            var acked = try await publisher.publish("late.a", count: 2).map(\.sequence)

            // NATS now accepts only CA2: the edge, still presenting A, is down.
            _ = try await Self.restartNATS(nats, trusting: ca2.certificate, edge: edge, waitForReady: false)
            // The event: nats-server refusing the edge's reconnect with A.
            let refused = await eventually(timeout: 15, every: 0.05) { nats.process.transcript.contains("TLS handshake error") }
            #expect(refused, "nats-server did not refuse certificate A:\n\(nats.process.transcript)")
            #expect(!(await edge.isReady()), "the edge is ready presenting A, which NATS no longer trusts:\n\(edge.log)")
            // A publish waits for JetStream (retrying within publish_timeout) while the certificate is renewed.
            let waiting = Task { try await publisher.publish("late.b", count: 2, firstID: 10) }
            try files.replace(with: certificateB)
            if delivery == .newPaths { try edge.useJetStream(nats, publishTimeout: "15s", client: files.files) }
            let reloadLine = try await Self.reload(edge)
            #expect(reloadLine.contains("configuration reloaded"), "\(reloadLine)")
            let back = await eventually(timeout: 15, every: 0.05) { await edge.isReady() }
            #expect(back, "the edge did not come back after the renewal:\n\(edge.log)")
            let late = try? await waiting.value
            #expect(late?.count == 2, "the publish in flight during the renewal was not acknowledged:\n\(edge.log)")
            acked += late?.map(\.sequence) ?? []
            acked += (try? await publisher.publish("late.c", count: 2, firstID: 20))?.map(\.sequence) ?? []
            #expect(acked.count == 6)

            let delivered = try await subscriber.messages(acked.count)
            #expect(delivered.map(\.sequence) == acked.sorted(), "delivered \(delivered.map(\.sequence)), acknowledged \(acked)")
            _ = try await publisher.publish("late.marker", count: 1, firstID: 5_000)
            #expect(try await subscriber.messages(1).first?.topic == "late.marker")
            await publisher.close()
            await subscriber.close()
        }
    }

    @Test("renewed files that cannot work (a key of another certificate, an expired certificate, a CA NATS does not trust) are not taken, with the reason; the edge keeps its connection and the rest of the reload (a CRL) applies",
          arguments: Delivery.allCases)
    func unusableRenewalIsRefused(delivery: Delivery) async throws {
        let pki = try TLSTestPKI()
        let nats = try await SingleNATSServer(pki: pki)
        let certificateA = try pki.add("nats-edge-a", .client(commonName: "nats-edge"))
        let other = try pki.add("nats-edge-other", .client(commonName: "nats-edge"))
        var lapsed = CertificateRequest.client(commonName: "nats-expired")
        lapsed.setValidity(days: 1, startingInDays: -2)
        let expired = try pki.add("nats-expired", lapsed)
        let strangerCA = try DevelopmentPKI.createCA(commonName: "Stranger CA")
        let stranger = try pki.add("nats-stranger", .client(commonName: "nats-edge"), signedBy: strangerCA)
        let revoked = try pki.add("revoked-client", .client(commonName: "revoked-client"))
        var files = try EdgeFiles(certificateA, delivery: delivery, in: pki)
        let edge = try RelaydFixture(pki: pki, metrics: true)
        try edge.useJetStream(nats, publishTimeout: "4s", client: files.files)
        try await withRelayd(edge) { edge in
            let publisher = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await publisher.hello()
            #expect(try await publisher.publish("refuse.t", count: 2).count == 2)
            let victim = try await FrameClient.connect(port: edge.port, pki: edge.pki, as: revoked)
            try await victim.hello()
            let cases: [(source: TLSTestPKI.Files, keyOnly: Bool, says: [String])] = [
                (other, true, ["does not match certificate", Self.currentCertificate]),
                (expired, false, ["has expired", "CN=nats-expired"]),
                (stranger, false, ["NATS did not accept a connection with the renewed files", "keeps the connection it has"]),
            ]
            for (index, (source, keyOnly, says)) in cases.enumerated() {
                try files.replace(with: source, keyOnly: keyOnly)
                if delivery == .newPaths { try edge.useJetStream(nats, publishTimeout: "4s", client: files.files) }
                let last = index == cases.count - 1
                if last {
                    // The same reload revokes a client: the CRL must not wait for NATS.
                    try edge.writeConfig(crl: try pki.writeCRL(revoking: [revoked.issued.serialNumber]))
                }
                let notTaken = Self.lines(edge, containing: "renewed NATS files not taken").count
                let line = try await Self.reload(edge)
                #expect(line.contains("configuration reloaded") && line.contains("storage.jetstream"),
                        "\(source.certificate): \(line)")
                let reason = Self.lines(edge, containing: "renewed NATS files not taken")
                #expect(reason.count == notTaken + 1, "\(source.certificate): no line saying why:\n\(edge.log)")
                let why: String = reason.last ?? "(no line)"
                for said in says {
                    let text = said == Self.currentCertificate ? files.files.certificate : said
                    #expect(why.contains(text), "\(source.certificate): no '\(text)' in \(why)")
                }
                if last {
                    let ended = try await victim.nextError()
                    #expect(ended?.errorCode == .certificateRevoked, "\(String(describing: ended))")
                    let audited = await edge.waitForAudit {
                        $0.event == "reload" && $0["result"] == "applied"
                            && $0["nats_client_renewal_refused"]?.contains("NATS did not accept") == true
                    }
                    #expect(audited?["restart_required"] == "storage.jetstream", "\(String(describing: audited))")
                }
                let acks = try? await publisher.publish("refuse.t", count: 2, firstID: 10 * UInt64(index + 1))
                #expect(acks?.count == 2, "the edge stopped acknowledging after a refused renewal:\n\(edge.log)")
            }
            #expect(Self.lines(edge, containing: "relayd presents the renewed NATS certificate").isEmpty, "\(edge.log)")
            // Each refusal is counted, so an alert need not parse logs: the reloads themselves were applied.
            #expect(try await edge.metric("relay_nats_client_renewals_total{result=\"refused\"}") == Double(cases.count))
            #expect(try await edge.metric("relay_nats_client_renewals_total{result=\"taken\"}") == 0)
            #expect(try await edge.metric("relay_reload_failures_total") == 0)
            // The connection kept is A's: a reconnect still passes (nats.c holds A in memory).
            let ready = try await Self.restartNATS(nats, trusting: pki.ca.certificate, edge: edge)
            #expect(ready, "the edge did not reconnect with its original certificate:\n\(edge.log)")
            #expect((try? await publisher.publish("refuse.t", count: 2, firstID: 100))?.count == 2)
            await publisher.close()
        }
    }
}
