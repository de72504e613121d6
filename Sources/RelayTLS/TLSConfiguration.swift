import NIOCore

/// The lowest TLS version a context accepts.
public enum TLSMinimumVersion: Sendable, Hashable {
    /// TLS 1.3 only (the default).
    case tls13
    /// TLS 1.2 and 1.3; TLS 1.2 is limited to ECDHE key exchange with AEAD ciphers.
    case tls12
}

/// A key-exchange group offered or accepted.
public enum TLSGroup: String, Sendable, Hashable, CaseIterable {
    case x25519 = "X25519"
    case p256 = "P-256"
}

/// What the broker's listener uses: its certificate, and which CAs may issue
/// client certificates. A client certificate is always required.
public struct TLSServerConfiguration: Sendable, Hashable {
    /// The server certificate, then any intermediates, in one PEM.
    public var certificateChain: PEMSource
    public var privateKey: PEMSource
    /// One or more CA bundles; client chains are verified against these only
    /// (never the system trust store).
    public var clientCAs: [PEMSource]
    /// CRL files; when any is given, every certificate of a client chain
    /// (leaf and intermediates) must be covered by a CRL of its issuer
    /// (revocation is checked fail-closed; see `crlMissing`).
    public var crls: [PEMSource]
    /// With CRLs, every certificate of a client chain must be covered by a
    /// CRL of its issuer; this says what happens when an intermediate's
    /// issuer has none loaded (refused by default).
    public var crlMissing: TLSMissingCRLPolicy
    public var minimumVersion: TLSMinimumVersion
    public var groups: [TLSGroup]
    public var handshakeTimeout: TimeAmount

    public init(certificateChain: PEMSource, privateKey: PEMSource, clientCAs: [PEMSource],
                crls: [PEMSource] = [], crlMissing: TLSMissingCRLPolicy = .refuse, minimumVersion: TLSMinimumVersion = .tls13,
                groups: [TLSGroup] = [.x25519, .p256], handshakeTimeout: TimeAmount = .seconds(10)) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.clientCAs = clientCAs
        self.crls = crls
        self.crlMissing = crlMissing
        self.minimumVersion = minimumVersion
        self.groups = groups
        self.handshakeTimeout = handshakeTimeout
    }
}

/// What a publisher or subscriber uses: its certificate, the roots it trusts
/// for the broker, and the name the broker's certificate must carry.
public struct TLSClientConfiguration: Sendable, Hashable {
    public var certificateChain: PEMSource
    public var privateKey: PEMSource
    /// Roots trusted for the server certificate (never the system store).
    public var trustRoots: [PEMSource]
    /// The broker's DNS name or IP address, checked against its DNS or IP
    /// SANs; a DNS name is also sent as SNI. A handler may override it.
    public var serverName: String
    public var crls: [PEMSource]
    public var minimumVersion: TLSMinimumVersion
    public var groups: [TLSGroup]
    public var handshakeTimeout: TimeAmount

    public init(certificateChain: PEMSource, privateKey: PEMSource, trustRoots: [PEMSource],
                serverName: String, crls: [PEMSource] = [], minimumVersion: TLSMinimumVersion = .tls13,
                groups: [TLSGroup] = [.x25519, .p256], handshakeTimeout: TimeAmount = .seconds(10)) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.trustRoots = trustRoots
        self.serverName = serverName
        self.crls = crls
        self.minimumVersion = minimumVersion
        self.groups = groups
        self.handshakeTimeout = handshakeTimeout
    }
}
