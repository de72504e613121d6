import RelayTLS

/// The name a refused or failed TLS handshake is logged, audited (`cause`)
/// and counted (`relay_handshake_failures_total{reason}`) under: a word an
/// operator can grep for and alert on, not an OpenSSL X509 error number
/// (the number stays in the log's and audit trail's `reason` text).
enum HandshakeFailureReason {
    static func name(_ error: TLSError) -> String {
        switch error {
        case .certificateRejected(let code, _): return x509Name(code)
        case .noPeerCertificate: return "no_client_certificate"
        case .alertReceived: return "alert_received"
        case .handshakeFailed: return "handshake_failed"
        case .handshakeTimedOut: return "handshake_timeout"
        case .unexpectedEOF: return "closed_during_handshake"
        case .protocolError: return "protocol_error"
        case .writeAfterClose: return "write_after_close"
        }
    }

    /// OpenSSL's X509_V_ERR_* values (x509_vfy.h), grouped by what the
    /// operator does about them. Unlisted codes keep their number, so no
    /// failure is hidden under a wrong name.
    static func x509Name(_ code: Int) -> String {
        switch code {
        case 10: return "certificate_expired"              // CERT_HAS_EXPIRED
        case 9: return "certificate_not_yet_valid"         // CERT_NOT_YET_VALID
        case 23: return "certificate_revoked"              // CERT_REVOKED
        case 2, 18, 19, 20, 21: return "unknown_ca"        // no trusted issuer / self-signed
        case 26: return "wrong_eku"                        // INVALID_PURPOSE: no clientAuth EKU
        case 37: return "ca_certificate_as_client"         // INVALID_NON_CA: a CA:TRUE leaf
        case 3: return "crl_missing"                       // UNABLE_TO_GET_CRL
        case 11, 12: return "crl_not_current"              // CRL_NOT_YET_VALID / CRL_HAS_EXPIRED
        case 7, 8: return "bad_signature"                  // CERT/CRL_SIGNATURE_FAILURE
        case 22, 25: return "chain_too_long"               // CERT_CHAIN_TOO_LONG / PATH_LENGTH_EXCEEDED
        case 24, 32, 79: return "invalid_ca"               // issuer cannot sign certificates
        case 34, 36: return "unhandled_critical_extension" // a critical extension OpenSSL does not know (cert / CRL)
        case 47, 48, 49, 51, 52, 53: return "name_constraint_violation" // a CA's nameConstraints (RFC 5280 §4.2.1.10)
        case 62, 64: return "hostname_mismatch"
        case -1: return "chain_unreadable"
        default: return "certificate_rejected_\(code)"
        }
    }
}
