import Foundation
internal import COpenSSL

/// What the server does when CRL checking is on (any `crl` is configured)
/// and no CRL from the CA that issued an intermediate CA of a client's chain
/// is loaded, so that intermediate's revocation status is unknown. The
/// client leaf itself must always be covered by a CRL of its issuer.
public enum TLSMissingCRLPolicy: String, Sendable, Hashable, CaseIterable {
    /// Refuse the chain (fail closed). The default.
    case refuse
    /// Accept an intermediate whose issuer's CRL is not loaded. A CRL that
    /// is loaded is still enforced for every certificate of the chain.
    case allowIntermediate = "allow-intermediate"
}

/// The checks OpenSSL's own chain verification leaves out, run from its
/// verify callback so a refusal fails the handshake with a TLS alert (and
/// fails a reload's re-check the same way):
/// - a client leaf must carry extendedKeyUsage clientAuth (OpenSSL's
///   SSL-client purpose accepts a leaf with no EKU at all), and must not be
///   a CA certificate (CA:TRUE, keyCertSign, or a v1 self-signed root);
/// - with ``TLSMissingCRLPolicy/allowIntermediate``, "unable to get CRL"
///   above the leaf is forgiven.
enum ChainVerification {
    /// For SSL_CTX_set_verify / X509_STORE_CTX_set_verify_cb on the server
    /// (client chains), with missing intermediate CRLs refused.
    static let clientChainStrict: @convention(c) (Int32, OpaquePointer?) -> Int32 = { ok, store in
        ChainVerification.evaluate(ok, store, allowMissingIntermediateCRL: false)
    }

    /// The same, with missing intermediate CRLs forgiven.
    static let clientChainAllowingMissingIntermediateCRL: @convention(c) (Int32, OpaquePointer?) -> Int32 = { ok, store in
        ChainVerification.evaluate(ok, store, allowMissingIntermediateCRL: true)
    }

    static func callback(for policy: TLSMissingCRLPolicy) -> @convention(c) (Int32, OpaquePointer?) -> Int32 {
        policy == .refuse ? clientChainStrict : clientChainAllowingMissingIntermediateCRL
    }

    /// OpenSSL calls this once per certificate with `ok` = its own verdict.
    /// `store` (an X509_STORE_CTX) and the certificates it hands out are
    /// borrowed for the call only.
    private static func evaluate(_ ok: Int32, _ store: OpaquePointer?, allowMissingIntermediateCRL: Bool) -> Int32 {
        guard let store else { return ok }
        let depth = X509_STORE_CTX_get_error_depth(store)
        guard ok == 1 else {
            if allowMissingIntermediateCRL, depth > 0, X509_STORE_CTX_get_error(store) == X509_V_ERR_UNABLE_TO_GET_CRL {
                X509_STORE_CTX_set_error(store, X509_V_OK)
                return 1
            }
            return 0
        }
        // OpenSSL signals success for each certificate from the root down;
        // depth 0 is the client leaf, after its revocation was checked.
        if depth == 0, let leaf = X509_STORE_CTX_get_current_cert(store), let violation = clientLeafViolation(leaf) {
            X509_STORE_CTX_set_error(store, violation)
            return 0
        }
        return 1
    }

    /// The X509 error for a client leaf that breaks the rules above, or nil.
    static func clientLeafViolation(_ leaf: OpaquePointer) -> Int32? {
        if X509_check_ca(leaf) != 0 { return X509_V_ERR_INVALID_NON_CA }
        let hasEKU = X509_get_extension_flags(leaf) & UInt32(EXFLAG_XKUSAGE) != 0
        if !hasEKU || X509_get_extended_key_usage(leaf) & UInt32(XKU_SSL_CLIENT) == 0 { return X509_V_ERR_INVALID_PURPOSE }
        return nil
    }
}

extension SSLContextCore {
    /// A verification failure in words: OpenSSL's reason, plus what it
    /// means here for the errors Relay adds to or relies on. `chain` is
    /// what was verified (leaf first, possibly incomplete); borrowed.
    func rejection(code: Int32, chain: [OpaquePointer], serverName: String?) -> TLSError {
        var reason = String(cString: X509_verify_cert_error_string(Int(code)))
        switch code {
        case X509_V_ERR_UNABLE_TO_GET_CRL:
            reason += ": " + missingCRLDescription(chain)
        case X509_V_ERR_CRL_HAS_EXPIRED where role == .server:
            reason += ": " + staleCRLDescription(chain)
        case X509_V_ERR_INVALID_PURPOSE where role == .server:
            reason += ": " + unsuitablePurposeDescription(chain)
        case X509_V_ERR_INVALID_NON_CA where role == .server:
            reason += ": the client presented a CA certificate (basicConstraints CA:TRUE or keyUsage keyCertSign) as its own; issue it an end-entity certificate with EKU clientAuth"
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            reason += ": the broker's certificate has no subjectAltName (DNS or IP) matching '\(serverName ?? "?")'; its CN is never used (RFC 9525)"
        default:
            break
        }
        return .certificateRejected(code: Int(code), reason: reason)
    }

    /// Which of the causes of X509 error 26 the client's chain has, so the
    /// refusal does not blame a missing EKU on a leaf that has clientAuth.
    private func unsuitablePurposeDescription(_ chain: [OpaquePointer]) -> String {
        let rule = "a client certificate must carry extendedKeyUsage clientAuth"
        guard let leaf = chain.first else { return rule }
        let flags = X509_get_extension_flags(leaf)
        if flags & UInt32(EXFLAG_XKUSAGE) == 0 {
            return rule + "; this one has no extendedKeyUsage extension (Relay refuses that too)"
        }
        if X509_get_extended_key_usage(leaf) & UInt32(XKU_SSL_CLIENT) == 0 {
            return rule + "; its extendedKeyUsage does not include clientAuth"
        }
        if flags & UInt32(EXFLAG_KUSAGE) != 0,
           X509_get_key_usage(leaf) & UInt32(KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT) == 0 {
            return "the client certificate has extendedKeyUsage clientAuth, but its keyUsage has neither "
                + "digitalSignature nor keyAgreement, so it cannot authenticate a TLS client; issue it with digitalSignature"
        }
        return "the client certificate has extendedKeyUsage clientAuth; a CA certificate of its chain restricts "
            + "extendedKeyUsage to purposes without clientAuth"
    }

    /// Names the CA whose loaded CRL is past its nextUpdate, and when it
    /// lapsed: the fault is the broker's revocation data, not the client's
    /// certificate (whose TLS alert, OpenSSL's mapping of X509 error 12,
    /// says "certificate expired").
    private func staleCRLDescription(_ chain: [OpaquePointer]) -> String {
        let now = Date()
        for certificate in chain {
            let issuer = X509_get_issuer_name(certificate)
            for crl in crls where X509_NAME_cmp(X509_CRL_get_issuer(crl.ref), issuer) == 0 {
                guard let nextUpdate = IdentityExtractor.date(X509_CRL_get0_nextUpdate(crl.ref)), nextUpdate <= now else { continue }
                let ca = issuer.flatMap { try? IdentityExtractor.distinguishedName($0).rfc4514 } ?? "(unreadable name)"
                return "the loaded CRL from CA '\(ca)' is past its next update (\(ISO8601DateFormatter().string(from: nextUpdate))), "
                    + "so every client chain that CA covers is refused until a current CRL is loaded; the client's certificate "
                    + "is not at fault: issue a new CRL from that CA, put it where [tls] crl points and reload"
            }
        }
        return "a loaded CRL is past its next update, so the chains it covers are refused; issue new CRLs for [tls] crl and reload"
    }

    /// Names the CA whose CRL is missing: the issuer of the first
    /// certificate of `chain` that no loaded CRL covers (by issuer name).
    private func missingCRLDescription(_ chain: [OpaquePointer]) -> String {
        for certificate in chain {
            let issuer = X509_get_issuer_name(certificate)
            let covered = crls.contains { X509_NAME_cmp(X509_CRL_get_issuer($0.ref), issuer) == 0 }
            guard !covered, let issuer else { continue }
            let ca = (try? IdentityExtractor.distinguishedName(issuer).rfc4514) ?? "(unreadable name)"
            let subject = (try? IdentityExtractor.distinguishedName(X509_get_subject_name(certificate)).rfc4514) ?? "(unreadable name)"
            let hint = role == .server && certificate != chain.first
                ? ", or set [tls] crl_missing = \"allow-intermediate\" to accept intermediates whose issuer's CRL is not loaded" : ""
            return "no CRL from CA '\(ca)' is loaded (it issued '\(subject)'); add that CA's CRL to [tls] crl\(hint)"
        }
        return "no valid CRL from a CA of the chain is loaded (a CRL is there but does not match the CA's key, or it failed to verify); check the files in [tls] crl"
    }
}
