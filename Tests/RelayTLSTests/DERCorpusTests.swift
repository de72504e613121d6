import Foundation
import RelayCore
import RelayTestSupport
import Testing
@testable import RelayTLS

/// Replays the kept fuzz corpus of relay-fuzz-certificate-identity through
/// the same entry point (`Identity(der:)`) and checks as the fuzz target
/// (DERCorpus/ links to Fuzz/CertificateIdentity/CertificateIdentityInvariants.swift).
@Suite("Certificate identity fuzz corpus")
struct DERCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/certificate-identity")

    @Test("every kept corpus input is refused with a typed error or extracts the same identity as PEM")
    func corpusReplays() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path)
        #expect(files.count >= 20, "the kept corpus at \(Self.corpus.path) is missing or was emptied")
        var accepted = 0
        for file in files {
            let data = try Data(contentsOf: Self.corpus.appendingPathComponent(file))
            let violations = data.withUnsafeBytes { CertificateIdentityInvariants.violations($0) }
            #expect(violations.isEmpty, "\(file): \(violations)")
            if (try? Identity(der: [UInt8](data))) != nil { accepted += 1 }
        }
        // The corpus must keep real certificates, or the extraction code goes unexercised.
        #expect(accepted >= 5, "only \(accepted) corpus inputs are certificates")
    }

    @Test("the test PKI's certificates satisfy the same invariants and extract their subject")
    func testPKI() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        for files in [pki.ca, pki.server, pki.alice] {
            let pem = try String(contentsOfFile: files.certificate, encoding: .utf8)
            let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            let der = try #require(Data(base64Encoded: body), "\(files.certificate) is not PEM")
            let violations = der.withUnsafeBytes { CertificateIdentityInvariants.violations($0) }
            #expect(violations.isEmpty, "\(files.certificate): \(violations)")
            #expect(try Identity(der: [UInt8](der)) == Identity(pem: pem))
        }
    }
}
