import Testing
import RelayCore

/// Wave 15 made the handshake's own text and value building cheaper
/// (docs/performance-history.md, "mTLS handshakes (wave 15)"): a distinguished name
/// keeps its RFC 4514 text, `CertificateFingerprint(bytes:)` is inlinable,
/// the audit trail quotes values straight into its line. These pin that the
/// results are the ones the earlier code gave.
@Suite("Handshake path: cached and appended texts equal the rules")
struct HandshakePathPinTests {
    typealias Attribute = DistinguishedName.Attribute

    /// The rendering `rfc4514` computed on every read before wave 15.
    static func rfc4514ByRule(_ rdns: [[Attribute]]) -> String {
        rdns.reversed().map { rdn in
            rdn.map { "\($0.key)=\(DistinguishedName.escape($0.value))" }.joined(separator: "+")
        }.joined(separator: ",")
    }

    static let cn = Attribute(oid: "2.5.4.3", shortName: "CN", value: "billing-worker-1")
    static let names: [[[Attribute]]] = [
        [],
        [[cn]],
        [[Attribute(oid: "2.5.4.6", shortName: "C", value: "DE")], [Attribute(oid: "2.5.4.10", shortName: "O", value: "Acme, Inc.")],
         [Attribute(oid: "2.5.4.11", shortName: "OU", value: "#ops ")], [cn]],
        // A multi-valued RDN, an unknown OID (no short name), an empty RDN, escapes and non-ASCII.
        [[Attribute(oid: "2.5.4.11", shortName: "OU", value: "a+b"), Attribute(oid: "1.2.3.4.5", shortName: nil, value: " x ")],
         [], [Attribute(oid: "2.5.4.3", shortName: "CN", value: "Zoë \u{202E}gpj.exe\n;<>\"\\")]],
        [[Attribute(oid: "0.9.2342.19200300.100.1.25", shortName: "DC", value: "")], [], []],
    ]

    @Test("rfc4514 is the text the rules give, for names with every kind of RDN")
    func rfc4514MatchesTheRules() {
        for rdns in Self.names {
            #expect(DistinguishedName(rdns: rdns).rfc4514 == Self.rfc4514ByRule(rdns), "\(rdns)")
        }
    }

    @Test("rfc4514 follows every change of rdns")
    func rfc4514FollowsChanges() {
        var name = DistinguishedName(rdns: [[Self.cn]])
        name.rdns.insert([Attribute(oid: "2.5.4.10", shortName: "O", value: "Acme")], at: 0)
        #expect(name.rfc4514 == "CN=billing-worker-1,O=Acme")
        name.rdns[1][0].value = "x,y"
        #expect(name.rfc4514 == "CN=x\\,y,O=Acme")
        name.rdns[1].append(Attribute(oid: "2.5.4.5", shortName: "serialNumber", value: "7"))
        #expect(name.rfc4514 == "CN=x\\,y+serialNumber=7,O=Acme")
        name.rdns = []
        #expect(name.rfc4514 == "")
        for rdns in Self.names {
            var changed = DistinguishedName(rdns: [])
            changed.rdns = rdns
            #expect(changed.rfc4514 == Self.rfc4514ByRule(rdns))
        }
    }

    @Test("equality and hashing are those of rdns")
    func equalityIsByRDNs() {
        for (i, a) in Self.names.enumerated() {
            for (j, b) in Self.names.enumerated() {
                #expect((DistinguishedName(rdns: a) == DistinguishedName(rdns: b)) == (a == b), "\(i) \(j)")
            }
            var set: Set<DistinguishedName> = [DistinguishedName(rdns: a)]
            var rebuilt = DistinguishedName(rdns: [])
            rebuilt.rdns = a
            #expect(!set.insert(rebuilt).inserted)
            #expect(DistinguishedName(rdns: a).hashValue == rebuilt.hashValue)
        }
    }

    /// Big-endian words of 32 bytes, as the type documents them.
    static func wordsByRule(_ bytes: [UInt8]) -> [UInt64] {
        stride(from: 0, to: 32, by: 8).map { start in bytes[start..<start + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
    }

    @Test("CertificateFingerprint(bytes:) gives the same words from an array, a slice and a non-contiguous collection")
    func fingerprintFromAnyCollection() throws {
        var generator = SystemRandomNumberGenerator()
        let samples: [[UInt8]] = [[UInt8](repeating: 0, count: 32), [UInt8](repeating: 0xFF, count: 32), (0..<32).map { UInt8($0) }]
            + (0..<50).map { _ in (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        for bytes in samples {
            let expected = Self.wordsByRule(bytes)
            let fromArray = try #require(CertificateFingerprint(bytes: bytes))
            #expect([fromArray.w0, fromArray.w1, fromArray.w2, fromArray.w3] == expected)
            #expect(CertificateFingerprint(bytes: ([0, 1] + bytes + [2]).dropFirst(2).dropLast()) == fromArray)
            #expect(CertificateFingerprint(bytes: bytes.reversed().reversed()) == fromArray)
            let lazy = bytes.lazy.map { $0 }  // not contiguous: the element-by-element walk
            #expect(CertificateFingerprint(bytes: lazy) == fromArray)
            #expect(fromArray.bytes == bytes)
        }
        #expect(CertificateFingerprint(bytes: [UInt8](repeating: 1, count: 31)[...]) == nil)
        let long = [UInt8](repeating: 1, count: 33).lazy.map { $0 }
        #expect(CertificateFingerprint(bytes: long) == nil)
    }

    @Test("appendQuoted appends exactly what quoted returns, in both styles, after any prefix")
    func appendQuotedEqualsQuoted() {
        for text in EscapeFastPathTests.samples + ["a\"b", "\u{1F600}", "line\nbreak", String(repeating: "x", count: 300)] {
            for prefix in ["", ",\"k\":", String(repeating: "p", count: 40)] {
                var json = prefix
                JSONText.appendQuoted(text, to: &json)
                #expect(json == prefix + JSONText.quoted(text), "\(Array(text.utf8))")
                var swift = prefix
                DisplayText.appendQuoted(text, style: .swift, to: &swift)
                #expect(swift == prefix + DisplayText.quoted(text), "\(Array(text.utf8))")
            }
        }
    }
}
