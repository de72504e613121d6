import Foundation
import RelayCore
internal import COpenSSL

/// When a verified chain stops being valid: the earliest notAfter of all
/// its certificates. A CA may expire before the leaf it issued (nothing
/// stops a CA from signing past its own end), and from that moment OpenSSL
/// refuses the chain at every handshake; a live session must end then too.
public struct ChainExpiry: Sendable, Hashable {
    public var notAfter: Date
    /// Position in the chain: 0 is the client's own certificate.
    public var depth: Int
    /// The RFC 4514 subject of the certificate that expires first.
    public var subject: String

    public init(notAfter: Date, depth: Int, subject: String) {
        self.notAfter = notAfter
        self.depth = depth
        self.subject = subject
    }
}

extension PeerCertificateChain {
    /// The certificate of the chain that expires first (the leaf when
    /// several expire at the same second); nil when a certificate cannot be
    /// decoded, which a chain that passed verification never has. Read at
    /// the handshake from OpenSSL's verified chain; a chain built from DER
    /// alone decodes its certificates again (`d2i_X509` costs about as much
    /// as an ECDSA verify on OpenSSL 3.0: not per handshake).
    public var earliestExpiry: ChainExpiry? {
        if let verifiedExpiry { return verifiedExpiry }
        let certificates = derCertificates.compactMap(OwnedCertificate.fromDER)
        guard certificates.count == derCertificates.count else {
            OpenSSLErrorQueue.clear()
            return nil
        }
        // `certificates` owns every X509 that `earliest(of:)` borrows, to the end of the call.
        return withExtendedLifetime(certificates) { ChainExpiry.earliest(of: certificates.map(\.ref)) }
    }
}

extension ChainExpiry {
    /// The earliest notAfter of `chain` (X509 pointers borrowed from the
    /// caller's verified chain, alive for this call); nil when a date or
    /// name cannot be read. `leaf`: a certificate (borrowed as well) whose
    /// subject the caller has already read; when it is the one that expires
    /// first (the same X509), that subject names it (no second extraction).
    static func earliest(of chain: [OpaquePointer], leaf: (x509: OpaquePointer, subject: DistinguishedName)? = nil) -> ChainExpiry? {
        var best: (notAfter: Date, depth: Int, x509: OpaquePointer)?
        for (depth, x509) in chain.enumerated() {
            guard let notAfter = IdentityExtractor.date(X509_get0_notAfter(x509)) else {
                OpenSSLErrorQueue.clear()
                return nil
            }
            if best.map({ notAfter < $0.notAfter }) ?? true { best = (notAfter, depth, x509) }
        }
        guard let best else {
            OpenSSLErrorQueue.clear()
            return nil
        }
        if let leaf, leaf.x509 == best.x509 {
            return ChainExpiry(notAfter: best.notAfter, depth: best.depth, subject: leaf.subject.rfc4514)
        }
        guard let name = X509_get_subject_name(best.x509),
              let subject = try? IdentityExtractor.distinguishedName(name) else {
            OpenSSLErrorQueue.clear()
            return nil
        }
        return ChainExpiry(notAfter: best.notAfter, depth: best.depth, subject: subject.rfc4514)
    }
}
