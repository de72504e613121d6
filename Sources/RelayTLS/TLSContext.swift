import NIOCore
internal import COpenSSL

/// The shared OpenSSL context of one side (an SSL_CTX and its trust store),
/// built once from a configuration and used by every connection opened from
/// it. Immutable after construction, so one instance serves all event loops.
final class SSLContextCore: @unchecked Sendable {
    // @unchecked: the SSL_CTX is fully configured in init and afterwards only
    // used by SSL_new and store lookups, which OpenSSL documents as thread-safe.
    enum Role { case server, client }

    let ctx: OpaquePointer
    let role: Role
    let handshakeTimeout: TimeAmount
    let hasCRLs: Bool
    /// The loaded CRLs, to name the CA whose CRL is missing when a chain
    /// fails with "unable to get certificate CRL".
    let crls: [OwnedCRL]
    let missingCRL: TLSMissingCRLPolicy

    deinit { SSL_CTX_free(ctx) }

    init(role: Role, chain: PEMSource, key: PEMSource, trusted: [PEMSource], crls: [PEMSource],
         minimumVersion: TLSMinimumVersion, groups: [TLSGroup], handshakeTimeout: TimeAmount,
         missingCRL: TLSMissingCRLPolicy = .refuse) throws(TLSConfigurationError) {
        guard !trusted.isEmpty else {
            throw .invalidSetting(role == .server
                ? "no client CA configured; list at least one CA bundle that issues client certificates"
                : "no trust root configured; list the CA bundle that issued the broker's certificate")
        }
        guard !groups.isEmpty else { throw .invalidSetting("no key-exchange group configured; use X25519 and/or P-256") }
        guard handshakeTimeout > .zero else { throw .invalidSetting("handshake timeout must be positive") }
        // Load everything first so a bad file never leaves a half-built context.
        let certificates = try PEMReader.certificates(chain)
        let privateKey = try PEMReader.privateKey(key)
        var authorities: [OwnedCertificate] = []
        for source in trusted {
            let loaded = try PEMReader.certificates(source)
            if role == .server { try Self.requireCertificateAuthorities(loaded, from: source) }
            authorities += loaded
        }
        var revocationLists: [OwnedCRL] = []
        for source in crls { revocationLists += try PEMReader.crls(source) }
        let leaf = certificates[0]
        guard X509_check_private_key(leaf.ref, privateKey.ref) == 1 else {
            // A bundle written root or intermediate first (`cat ca.pem server.pem`):
            // say where the key's certificate is rather than "does not match".
            let later = certificates.indices.dropFirst().first { X509_check_private_key(certificates[$0].ref, privateKey.ref) == 1 }
            OpenSSLErrorQueue.clear()
            if let later {
                throw .keyMatchesLaterCertificate(certificate: chain.description, key: key.description,
                                                  position: later + 1, count: certificates.count)
            }
            throw .keyDoesNotMatchCertificate(certificate: chain.description, key: key.description)
        }
        // A server certificate no client accepts (a clientAuth-only leaf) used
        // to load, and a reload applied it: every client then refused the broker.
        // Only the server side: tests present such leaves as clients on purpose.
        if role == .server && X509_check_purpose(leaf.ref, relay_X509_PURPOSE_SSL_SERVER(), 0) != 1 {
            OpenSSLErrorQueue.clear()
            throw .notAServerCertificate(source: chain.description)
        }
        if role == .server { try Self.requireUnexpired(leaf, source: chain) }

        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw .openSSL(operation: "SSL_CTX_new", detail: OpenSSLErrorQueue.drain())
        }
        // From here `ctx` is owned by self (freed in deinit even if init throws
        // later, since all stored properties are set first).
        self.ctx = ctx
        self.role = role
        self.handshakeTimeout = handshakeTimeout
        self.hasCRLs = !revocationLists.isEmpty
        self.crls = revocationLists
        self.missingCRL = missingCRL

        func check(_ ok: Bool, _ operation: String) throws(TLSConfigurationError) {
            if !ok { throw .openSSL(operation: operation, detail: OpenSSLErrorQueue.drain()) }
        }
        let minimum = minimumVersion == .tls13 ? relay_TLS1_3_VERSION() : relay_TLS1_2_VERSION()
        try check(relay_SSL_CTX_set_min_proto_version(ctx, minimum) == 1, "setting the minimum TLS version")
        // TLS 1.2 (when allowed): forward-secret ECDHE with AEAD ciphers only.
        try check(SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL") == 1, "setting TLS 1.2 ciphers")
        try check(SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") == 1,
                  "setting TLS 1.3 cipher suites")
        try check(relay_SSL_CTX_set1_groups_list(ctx, groups.map(\.rawValue).joined(separator: ":")) == 1, "setting groups")
        // No renegotiation, no compression; the server's cipher order wins.
        _ = SSL_CTX_set_options(ctx, relay_SSL_OP_NO_RENEGOTIATION() | relay_SSL_OP_NO_COMPRESSION()
            | relay_SSL_OP_CIPHER_SERVER_PREFERENCE() | relay_SSL_OP_NO_TICKET())
        // Idle connections give their 16 KiB+ record buffers back.
        _ = relay_SSL_CTX_set_mode(ctx, relay_SSL_MODE_RELEASE_BUFFERS())
        // No resumption: every connection presents and verifies a certificate
        // against the current CAs and CRLs, and no ticket state is kept.
        _ = relay_SSL_CTX_set_session_cache_mode(ctx, relay_SSL_SESS_CACHE_OFF())
        if role == .server { _ = SSL_CTX_set_num_tickets(ctx, 0) }

        // Our certificate, its chain and key (each call takes its own reference).
        try check(SSL_CTX_use_certificate(ctx, leaf.ref) == 1, "using the certificate of \(chain)")
        for intermediate in certificates.dropFirst() {
            try check(relay_SSL_CTX_add1_chain_cert(ctx, intermediate.ref) == 1, "adding a chain certificate from \(chain)")
        }
        try check(SSL_CTX_use_PrivateKey(ctx, privateKey.ref) == 1, "using the key \(key)")

        // A trust store holding only the configured CAs: never the system store.
        guard let store = X509_STORE_new() else { throw .openSSL(operation: "X509_STORE_new", detail: OpenSSLErrorQueue.drain()) }
        SSL_CTX_set_cert_store(ctx, store)  // ctx owns the store from here
        for authority in authorities {
            // X509_STORE_add_cert takes its own reference; a duplicate is not an error.
            _ = X509_STORE_add_cert(store, authority.ref)
            if role == .server { _ = SSL_CTX_add_client_CA(ctx, authority.ref) }
        }
        OpenSSLErrorQueue.clear()
        for crl in revocationLists {
            try check(X509_STORE_add_crl(store, crl.ref) == 1, "adding a CRL")
        }
        if !revocationLists.isEmpty {
            // Every certificate of the chain, not only the leaf: a revoked
            // intermediate CA revokes everything below it. A CA whose CRL is
            // not loaded fails the chain unless `missingCRL` allows it for
            // intermediates (see ChainVerification).
            _ = X509_STORE_set_flags(store, relay_X509_V_FLAG_CRL_CHECK() | relay_X509_V_FLAG_CRL_CHECK_ALL())
        }
        // A certificate file without intermediates: build our chain once, here,
        // from the configured CAs. Without an explicit chain OpenSSL builds it
        // again for every handshake (X509_verify_cert on our own certificate,
        // signature checks included), on both sides of an mTLS connection:
        // ~15% of a handshake's CPU. The root is left out: a peer must trust it
        // already, and every certificate sent is one more the peer parses. A
        // chain that cannot be completed (our issuer is not among the
        // configured CAs) is kept as far as it goes, as the per-handshake
        // build did. With intermediates in the file, the chain is theirs.
        if certificates.count == 1 {
            _ = relay_SSL_CTX_build_cert_chain(ctx, relay_SSL_BUILD_CHAIN_FLAG_NO_ROOT()
                | relay_SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR() | relay_SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR())
            OpenSSLErrorQueue.clear()
        }
        // EKU: clients must be allowed clientAuth, servers serverAuth.
        let purpose = role == .server ? relay_X509_PURPOSE_SSL_CLIENT() : relay_X509_PURPOSE_SSL_SERVER()
        try check(X509_VERIFY_PARAM_set_purpose(SSL_CTX_get0_param(ctx), purpose) == 1, "setting the EKU purpose")
        try check(X509_STORE_set_purpose(store, purpose) == 1, "setting the store purpose")
        let verifyMode = role == .server
            ? relay_SSL_VERIFY_PEER() | relay_SSL_VERIFY_FAIL_IF_NO_PEER_CERT()
            : relay_SSL_VERIFY_PEER()
        // Client chains also pass Relay's own leaf rules (ChainVerification).
        SSL_CTX_set_verify(ctx, verifyMode, role == .server ? ChainVerification.callback(for: missingCRL) : nil)
        SSL_CTX_set_verify_depth(ctx, 8)
    }

    /// Verifies a stored peer chain (leaf first) against this context's CAs,
    /// CRLs, validity and EKU, as the handshake did.
    func verify(_ chain: PeerCertificateChain) throws(TLSError) {
        let certificates = chain.derCertificates.compactMap(OwnedCertificate.fromDER)
        guard let leaf = certificates.first, certificates.count == chain.derCertificates.count else {
            throw .certificateRejected(code: -1, reason: "stored peer chain cannot be decoded")
        }
        guard let storeContext = X509_STORE_CTX_new() else {
            throw .certificateRejected(code: -1, reason: "out of memory")
        }
        defer { X509_STORE_CTX_free(storeContext) }
        guard let untrusted = relay_sk_X509_new_null() else { throw .certificateRejected(code: -1, reason: "out of memory") }
        // The stack holds its own reference to each certificate (up-ref on
        // push, pop_free after the store context is freed: defers run in
        // reverse order), so nothing OpenSSL reads during or after
        // X509_verify_cert depends on when Swift releases `certificates`.
        defer { relay_sk_X509_pop_free(untrusted) }
        for certificate in certificates.dropFirst() {
            X509_up_ref(certificate.ref)
            if relay_sk_X509_push(untrusted, certificate.ref) <= 0 {
                X509_free(certificate.ref)
                throw .certificateRejected(code: -1, reason: "out of memory")
            }
        }
        return try withExtendedLifetime(certificates) { () throws(TLSError) -> Void in
            guard X509_STORE_CTX_init(storeContext, SSL_CTX_get_cert_store(ctx), leaf.ref, untrusted) == 1 else {
                throw .certificateRejected(code: -1, reason: OpenSSLErrorQueue.drain())
            }
            let purpose = role == .server ? relay_X509_PURPOSE_SSL_CLIENT() : relay_X509_PURPOSE_SSL_SERVER()
            _ = X509_STORE_CTX_set_purpose(storeContext, purpose)
            // The same callback as the handshake: the leaf rules and the
            // missing-CRL policy apply to a reload's re-check too.
            if role == .server { X509_STORE_CTX_set_verify_cb(storeContext, ChainVerification.callback(for: missingCRL)) }
            let ok = X509_verify_cert(storeContext)
            OpenSSLErrorQueue.clear()
            if ok != 1 {
                throw rejection(code: X509_STORE_CTX_get_error(storeContext), chain: certificates.map(\.ref), serverName: nil)
            }
        }
    }
}

/// The server side's shared context. Build one per configuration (or
/// reload); handlers made from it share it.
public final class TLSServerContext: Sendable {
    let core: SSLContextCore
    public let configuration: TLSServerConfiguration

    /// Loads every file and builds the OpenSSL context; throws a
    /// ``TLSConfigurationError`` naming the file and the problem.
    public init(configuration: TLSServerConfiguration) throws(TLSConfigurationError) {
        self.configuration = configuration
        self.core = try SSLContextCore(
            role: .server, chain: configuration.certificateChain, key: configuration.privateKey,
            trusted: configuration.clientCAs, crls: configuration.crls, minimumVersion: configuration.minimumVersion,
            groups: configuration.groups, handshakeTimeout: configuration.handshakeTimeout,
            missingCRL: configuration.crlMissing)
    }

    /// Re-verifies a live session's peer chain against this context (its CAs,
    /// CRLs, the current time and EKU). The broker calls it after a reload and
    /// disconnects sessions it throws for (revoked, expired, CA removed).
    public func verify(_ chain: PeerCertificateChain) throws(TLSError) { try core.verify(chain) }

    /// A new handler for one accepted connection.
    public func makeHandler() throws(TLSError) -> TLSHandler {
        try TLSHandler(connection: SSLConnection(core: core, serverName: nil), timeout: core.handshakeTimeout)
    }
}

/// The client side's shared context.
public final class TLSClientContext: Sendable {
    let core: SSLContextCore
    public let configuration: TLSClientConfiguration

    public init(configuration: TLSClientConfiguration) throws(TLSConfigurationError) {
        guard !configuration.serverName.isEmpty else {
            throw .invalidSetting("serverName is empty; set the broker's DNS name or IP address as found in its certificate")
        }
        self.configuration = configuration
        self.core = try SSLContextCore(
            role: .client, chain: configuration.certificateChain, key: configuration.privateKey,
            trusted: configuration.trustRoots, crls: configuration.crls, minimumVersion: configuration.minimumVersion,
            groups: configuration.groups, handshakeTimeout: configuration.handshakeTimeout)
    }

    /// Re-verifies the server's chain against this context.
    public func verify(_ chain: PeerCertificateChain) throws(TLSError) { try core.verify(chain) }

    /// A new handler for one outgoing connection; `serverName` overrides the
    /// configured name (DNS name or IP literal).
    public func makeHandler(serverName: String? = nil) throws(TLSError) -> TLSHandler {
        let connection = try SSLConnection(core: core, serverName: serverName ?? configuration.serverName)
        connection.adaptiveReads = true
        return TLSHandler(connection: connection, timeout: core.handshakeTimeout)
    }
}
