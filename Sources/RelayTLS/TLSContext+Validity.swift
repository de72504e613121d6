internal import COpenSSL
import Foundation

/// Until when a server context's material works: past the server
/// certificate's notAfter clients refuse the broker, and past a loaded CRL's
/// nextUpdate OpenSSL refuses every client chain that CRL covers
/// (docs/security.md, "Keep CRLs fresh"). relayd exports both as gauges and
/// warns at start and reload when one is near.
public struct TLSMaterialValidity: Sendable, Equatable {
    /// The CRL that lapses first, and when.
    public struct CRLDeadline: Sendable, Equatable {
        public var nextUpdate: Date
        /// The CRL's issuer (RFC 4514), to name the CA whose CRL to re-issue.
        public var issuer: String

        public init(nextUpdate: Date, issuer: String) {
            self.nextUpdate = nextUpdate
            self.issuer = issuer
        }
    }

    /// The server certificate's notAfter; nil when it cannot be read.
    public var certificateNotAfter: Date?
    /// The earliest nextUpdate of the loaded CRLs; nil when no CRL is loaded
    /// or none has a nextUpdate (such a CRL does not lapse).
    public var earliestCRL: CRLDeadline?

    public init(certificateNotAfter: Date?, earliestCRL: CRLDeadline?) {
        self.certificateNotAfter = certificateNotAfter
        self.earliestCRL = earliestCRL
    }
}

extension TLSServerContext {
    /// Read from the loaded material on each call (start and reload only).
    public var validity: TLSMaterialValidity {
        // SSL_CTX_get0_certificate and X509_CRL_get0_nextUpdate/get_issuer
        // return pointers borrowed from the context and the CRLs, which
        // `core` owns and keeps alive for the whole of this property
        // (`self` holds `core`); nothing borrowed escapes it.
        let leaf = SSL_CTX_get0_certificate(core.ctx)
        let notAfter = leaf.flatMap { IdentityExtractor.date(X509_get0_notAfter($0)) }
        var earliest: TLSMaterialValidity.CRLDeadline?
        for crl in core.crls {
            guard let nextUpdate = IdentityExtractor.date(X509_CRL_get0_nextUpdate(crl.ref)) else { continue }
            guard earliest.map({ nextUpdate < $0.nextUpdate }) ?? true else { continue }
            let issuer = X509_CRL_get_issuer(crl.ref).flatMap { try? IdentityExtractor.distinguishedName($0).rfc4514 }
            earliest = .init(nextUpdate: nextUpdate, issuer: issuer ?? "(an issuer name OpenSSL could not read)")
        }
        return TLSMaterialValidity(certificateNotAfter: notAfter, earliestCRL: earliest)
    }
}
