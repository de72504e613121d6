import RelayCore

/// Fired as a user inbound event when the handshake completes: the peer's
/// verified identity and chain. A broker reads it before any frame handler
/// sees data; the chain is kept to re-verify against reloaded CRLs.
///
/// With TLS 1.3 the client fires it before the server has judged the
/// client certificate; a refused client gets an ``TLSError/alertReceived(code:description:)``
/// error on its next read.
public struct TLSHandshakeCompleted: Sendable, Hashable {
    public var peer: Identity
    public var peerChain: PeerCertificateChain
    /// "TLSv1.3" or "TLSv1.2".
    public var protocolVersion: String
    /// The OpenSSL cipher name, e.g. "TLS_AES_128_GCM_SHA256".
    public var cipherSuite: String

    public init(peer: Identity, peerChain: PeerCertificateChain, protocolVersion: String, cipherSuite: String) {
        self.peer = peer
        self.peerChain = peerChain
        self.protocolVersion = protocolVersion
        self.cipherSuite = cipherSuite
    }
}
