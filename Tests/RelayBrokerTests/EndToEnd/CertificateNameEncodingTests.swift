import Foundation
import NIOCore
import RelayBroker
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// Subject and SAN encodings other CAs issue, on real certificates against
/// the real relayd: an upper-case `SPIFFE://` scheme next to a SPIFFE ID, an
/// empty CN, a CN in BMPString, TeletexString or UniversalString, a NUL
/// inside a CN, a long enterprise subject. Each is issued by the test CA, so
/// only the names are odd.
/// (A UTF8String CN that is not UTF-8 cannot be made here: OpenSSL refuses
/// to encode the name, "invalid utf8string"; a relayd given one refuses the
/// handshake, since `IdentityExtractor` cannot read it: TLSHandler's
/// "peer certificate cannot be read".)
@Suite("relayd end to end: certificate name encodings", .serialized)
struct CertificateNameEncodingTests {
    static func client(_ subject: [[NameAttribute]], sans: [SubjectAlternativeName] = []) -> CertificateRequest {
        HostileIdentityTests.client(subject, sans: sans)
    }

    @Test("SPIFFE://… next to spiffe://… is two SPIFFE IDs for a {spiffe.path[N]} template too: refused at HELLO, the reason names the attribute",
          arguments: ["SPIFFE://relay.test/ns/billing", "Spiffe://relay.test/ns/billing"])
    func upperCaseSchemeIsAmbiguousForTemplates(other: String) async throws {
        try await withRelayd(acl: HostileIdentityTests.namespacedACL, start: false) { relayd in
            let orders = try relayd.pki.add("orders", Self.client([[NameAttribute("CN", "orders")]],
                                                                 sans: [.uri("spiffe://relay.test/ns/orders")]))
            let mixed = try relayd.pki.add("mixed", Self.client([[NameAttribute("CN", "mixed")]],
                                                                sans: [.uri("spiffe://relay.test/ns/orders"), .uri(other)]))
            try await relayd.start()

            // The control: one SPIFFE ID gets its service namespace.
            let good = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: orders)
            try await good.hello()
            #expect(try await good.publishReply(1, "svc.orders.x").map(HostileIdentityTests.isAck) == true)
            await good.close()

            // docs/security.md: "two SPIFFE IDs (… the scheme is compared
            // without case, so SPIFFE://… counts)" refuse the identity.
            let refused = try await HostileIdentityTests.refusedAtHello(relayd, mixed, other)
            #expect(refused?["reason"]?.contains("spiffe.path[1]") == true, "\(String(describing: refused?["reason"]))")
            #expect(refused?["reason"]?.contains("multi_value") == true, "\(String(describing: refused?["reason"]))")
        }
    }

    @Test("an empty CN (a zero-length UTF8String) under principal = {subject.CN}: refused at HELLO, not given the subject as a shared fallback")
    func emptyCommonNameIsRefusedAsPrincipal() async throws {
        try await withRelayd(acl: HostileIdentityTests.principalCNACL, start: false) { relayd in
            let subject: [[NameAttribute]] = [[NameAttribute("O", "SPIRE")], [.encoded("CN", .utf8String, bytes: [])]]
            let first = try relayd.pki.add("empty-1", Self.client(subject))
            let second = try relayd.pki.add("empty-2", Self.client(subject))
            try await relayd.start()

            for (label, files) in [("first", first), ("second", second)] {
                let refused = try await HostileIdentityTests.refusedAtHello(relayd, files, "empty CN (\(label))")
                #expect(refused?["reason"]?.contains("subject.CN") == true, "\(String(describing: refused?["reason"]))")
                #expect(refused?["reason"]?.contains("empty") == true, "\(String(describing: refused?["reason"]))")
            }
        }
    }

    @Test("a CN in BMPString, TeletexString or UniversalString is read as the same name in UTF-8: it gets that name's namespace and principal",
          arguments: [NameValueEncoding.StringType.bmpString, .teletexString, .universalString])
    func otherStringTypesAreTheSameName(type: NameValueEncoding.StringType) async throws {
        try await withRelayd(acl: HostileIdentityTests.ownACL + "\n[acl]\nprincipal = \"{subject.CN}\"\n", start: false) { relayd in
            // "bob" in the string type's own encoding: 2 or 4 bytes per character, or one (Teletex, read as Latin-1).
            let width = type == .bmpString ? 2 : type == .universalString ? 4 : 1
            let bytes = Array("bob".utf8).flatMap { [UInt8](repeating: 0, count: width - 1) + [$0] }
            let bob = try relayd.pki.add("bob-\(type)", Self.client([[.encoded("CN", type, bytes: bytes)]]))
            try await relayd.start()

            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: bob)
            defer { Task { await client.close() } }
            #expect(try await client.hello().principal == "bob")
            #expect(try await client.publishReply(1, "clients.bob.x").map(HostileIdentityTests.isAck) == true)
            #expect(try await client.publishReply(2, "clients.alice.x").map(HostileIdentityTests.isNotAuthorized) == true)
        }
    }

    @Test("a NUL inside a CN ('bob\\0evil') is not bob to a {subject.CN} template: refused at HELLO, the drop names U+0000")
    func nulInsideCommonName() async throws {
        try await withRelayd(acl: HostileIdentityTests.ownACL, start: false) { relayd in
            let nul = try relayd.pki.add("nul", Self.client([[.encoded("CN", .utf8String, bytes: Array("bob\u{0}evil".utf8))]]))
            try await relayd.start()
            let refused = try await HostileIdentityTests.refusedAtHello(relayd, nul, "NUL in CN")
            #expect(refused?["reason"]?.contains("grant nothing") == true, "\(String(describing: refused?["reason"]))")
            let drop = relayd.auditLines().first { $0.contains("U+0000") } ?? relayd.log.split(separator: "\n").first { $0.contains("U+0000") }.map(String.init)
            #expect(drop != nil, "no audit or log line names U+0000:\n\(relayd.log.suffix(2000))")
        }
    }

    @Test("a long enterprise subject (CN and seven OUs at the X.520 bounds, over 508 bytes as RFC 4514) can hold a durable subscription")
    func longSubjectHoldsADurable() async throws {
        try await withRelayd(start: false) { relayd in
            let units = (1...7).map { "organisational-unit-\($0)-" + String(repeating: "x", count: 40) }
            let request = CertificateRequest.client(commonName: String(repeating: "c", count: 64), organizationalUnits: units)
            let long = try relayd.pki.add("long", request)
            try await relayd.start()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: long)
            defer { Task { await client.close() } }
            let principal = try await client.hello().principal
            #expect(principal.utf8.count > 508, "the subject is only \(principal.utf8.count) bytes")
            let ack = try await client.subscribe(1, "work.q", durable: "orders-consumer")
            #expect(ack.isAccepted, "durable SUB refused: \(ack.code) \(ack.message)")
        }
    }

    @Test("a subject over 65,535 bytes as RFC 4514 (a 66,000-byte CN) is refused at HELLO with identity_refused, naming the limit; not told to raise max_frame_size")
    func subjectTooLongForWelcome() async throws {
        try await withRelayd(start: false) { relayd in
            let huge = try relayd.pki.add("huge", Self.client([[.encoded("CN", .utf8String, bytes: Array(repeating: UInt8(ascii: "a"), count: 66_000))]]))
            try await relayd.start()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: huge)
            defer { Task { await client.close() } }
            var told = ""
            do {
                _ = try await client.hello()
                Issue.record("WELCOME for a 66,003-byte subject")
            } catch FrameClientError.refused(let error) {
                #expect(error.errorCode == .identityRefused, "\(error)")
                told = error.message
            }
            #expect(told.contains("65,535") && !told.contains("max_frame_size"), "the client was told: \(told)")
            let refused = await relayd.waitForAudit { $0.event == "connection_refused" && $0["serial"] == huge.issued.serialNumber }
            #expect(refused?["reason"]?.contains("66003 bytes") == true, "\(String(describing: refused?.fields["reason"]))")
        }
    }

    /// URI SANs that look like SPIFFE IDs but break the SPIFFE ID grammar
    /// (lower-case trust domain, non-empty path segments of [A-Za-z0-9.-_],
    /// no `.`/`..`, query, fragment, port, user info or percent-encoding).
    static let malformedSPIFFEIDs = [
        "spiffe://relay.test/ns/orders/", "spiffe://relay.test/ns/../orders", "spiffe://relay.test/ns/./orders",
        "spiffe://relay.test/ns/orders?x=1", "spiffe://relay.test/ns/orders#f", "spiffe://relay.test:8443/ns/orders",
        "spiffe://ops@relay.test/ns/orders", "spiffe://Relay.Test/ns/orders", "spiffe://relay.test/ns/%6Frders",
        "spiffe://relay.test//orders", "spiffe:///ns/orders",
    ]

    @Test("a URI SAN that breaks the SPIFFE ID grammar (trailing slash, '..', '.', query, fragment, port, user info, upper-case or empty trust domain, %-encoding, empty segment) is no SPIFFE ID: WELCOME carries none and {spiffe.path[1]} grants nothing")
    func malformedSPIFFEIDsAreNone() async throws {
        let acl = """
        [[acl.rule]]
        name = "services"
        publish = ["svc.{spiffe.path[1]}.>"]
        subscribe = ["public.>"]
        """
        try await withRelayd(acl: acl, start: false) { relayd in
            let good = try relayd.pki.add("good", Self.client([[NameAttribute("CN", "good")]], sans: [.uri("spiffe://relay.test/ns/orders")]))
            let bad = try Self.malformedSPIFFEIDs.enumerated().map { index, uri in
                (uri, try relayd.pki.add("bad-\(index)", Self.client([[NameAttribute("CN", "bad-\(index)")]], sans: [.uri(uri)])))
            }
            try await relayd.start()

            for (uri, files, expected) in [("spiffe://relay.test/ns/orders", good, "spiffe://relay.test/ns/orders")] + bad.map({ ($0.0, $0.1, "") }) {
                let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
                let spiffeID = try await client.hello().spiffeID
                #expect(spiffeID == expected, "\(uri) gave the SPIFFE ID '\(spiffeID)'")
                let reply = try await client.publishReply(1, "svc.orders.x")
                #expect(reply.map(expected.isEmpty ? HostileIdentityTests.isNotAuthorized : HostileIdentityTests.isAck) == true,
                        "\(uri): svc.orders.x got \(String(describing: reply))")
                await client.close()
            }
        }
    }
}
