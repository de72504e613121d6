import Testing
@testable import RelayBroker

/// The names refused handshakes are counted and audited under (wave-14
/// attack run: a name-constraint violation was `certificate_rejected_47` and
/// an unhandled critical extension `certificate_rejected_34`, numbers an
/// operator cannot alert on without OpenSSL's header at hand).
@Suite("Handshake failure names for X509 errors")
struct HandshakeFailureNamingTests {
    @Test("name-constraint violations have one name, whichever check of RFC 5280 §4.2.1.10 failed",
          arguments: [47, 48, 49, 51, 52, 53])
    func nameConstraints(code: Int) {
        #expect(HandshakeFailureReason.x509Name(code) == "name_constraint_violation")
    }

    @Test("a critical extension OpenSSL does not know (certificate or CRL) is named", arguments: [34, 36])
    func unhandledCriticalExtension(code: Int) {
        #expect(HandshakeFailureReason.x509Name(code) == "unhandled_critical_extension")
    }

    @Test("an X509 error without a name keeps its number, so nothing hides under a wrong name")
    func unnamedKeepsNumber() {
        #expect(HandshakeFailureReason.x509Name(4242) == "certificate_rejected_4242")
    }
}
