import Foundation
import NIOCore
import RelayCore
internal import COpenSSL

/// One TLS session: an SSL object over one session BIO that reads the
/// caller's ciphertext in place and writes records straight into the
/// outbound buffer (SSLConnection+SessionBIO.swift). The only type
/// that calls OpenSSL for a session; every call reports incomplete,
/// complete or failed, and the handler decides what to do on the channel.
/// Not thread-safe: it lives on its channel's event loop.
final class SSLConnection {
    enum HandshakeResult { case incomplete, complete, failed(TLSError) }
    enum ReadResult { case data(ByteBuffer), wantMore, closeNotify, failed(TLSError) }

    let ssl: OpaquePointer
    /// The session BIO's state: the lent input and output windows and the
    /// spilled output. Owned by the BIO, which `ssl` owns: valid until SSL_free.
    let bioState: UnsafeMutablePointer<relay_session_bio_state>
    /// Ciphertext received and not yet read by OpenSSL (nil when all was).
    /// Kept as the channel gave it: lent to the BIO during each call, no copy.
    var inbound: ByteBuffer?
    /// Keeps the SSL_CTX alive while the session exists.
    let core: SSLContextCore
    /// The name the server's certificate must carry (client side).
    let serverName: String?
    /// Client sessions: a read that had to grow its buffer (more than one
    /// record was waiting) makes the next `Self.largeReads` reads start at
    /// the grown size. Growing by `realloc` copied the first 16 KiB record
    /// every time, ~200 instructions per 128 B message in the Swift client's
    /// profile at full load (wave 22). Not just the next read: under load a
    /// channel read is a large read and then a small one for the rest, and
    /// the small one must not make the next large one grow again. After that
    /// many reads of one record or less in a row (reads that found nothing
    /// do not count), reads start small again.
    /// Off for the broker's sessions, whose reads stay pinned by payload
    /// slices until their commit.
    var adaptiveReads = false
    private var largeReadsLeft = 0
    static let largeReads = 4

    init(core: SSLContextCore, serverName: String?) throws(TLSError) {
        guard let ssl = SSL_new(core.ctx) else { throw .handshakeFailed(reason: "SSL_new: \(OpenSSLErrorQueue.drain())") }
        guard let method = sessionBIOMethod, let bio = BIO_new(method) else {
            SSL_free(ssl)
            throw .handshakeFailed(reason: "BIO_new: out of memory")
        }
        guard let state = relay_session_bio_state_of(bio) else {
            BIO_free(bio)
            SSL_free(ssl)
            throw .handshakeFailed(reason: "BIO_new: no session state")
        }
        // One BIO for both directions: SSL_set_bio takes the one reference,
        // and SSL_free frees the BIO and with it `state`.
        SSL_set_bio(ssl, bio, bio)
        self.ssl = ssl
        self.bioState = state
        self.core = core
        self.serverName = serverName
        if core.role == .server {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName {
                if Self.isIPAddress(serverName) {
                    // IP literals are matched against IP SANs and never sent as SNI.
                    guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1 else {
                        throw .handshakeFailed(reason: "invalid server IP address '\(serverName)'")
                    }
                } else {
                    guard SSL_set1_host(ssl, serverName) == 1, relay_SSL_set_tlsext_host_name(ssl, serverName) == 1 else {
                        throw .handshakeFailed(reason: "invalid server name '\(serverName)'")
                    }
                    // SANs only (RFC 9525): without this flag OpenSSL falls back
                    // to the subject CN when the certificate has no DNS SAN.
                    SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NEVER_CHECK_SUBJECT))
                }
            }
        }
    }

    deinit { SSL_free(ssl) }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    func handshake() -> HandshakeResult {
        OpenSSLErrorQueue.clear()
        let rc = withInboundLent { SSL_do_handshake(ssl) }
        if rc == 1 { return .complete }
        let error = SSL_get_error(ssl, rc)
        if error == relay_SSL_ERROR_WANT_READ() || error == relay_SSL_ERROR_WANT_WRITE() { return .incomplete }
        return .failed(classifyFailure(duringHandshake: true))
    }

    /// Decrypts as many records as are available, up to `limit` bytes, into
    /// one buffer (fewer allocations and channel reads than one per record).
    func read(allocator: ByteBufferAllocator, limit: Int = 65_536) -> ReadResult {
        withInboundLent { readLent(allocator: allocator, limit: limit) }
    }

    /// ``read(allocator:limit:)`` while the inbound ciphertext is lent.
    private func readLent(allocator: ByteBufferAllocator, limit: Int) -> ReadResult {
        OpenSSLErrorQueue.clear()
        // Large only with ciphertext to read: the call that ends each
        // channel read finds none and says "want more".
        let large = largeReadsLeft > 0 && (SSL_has_pending(ssl) == 1 || bioState.pointee.input_length > 0)
        var buffer = allocator.buffer(capacity: large ? limit + Self.recordSize : Self.recordSize)
        defer {
            // Counted only when it read something.
            if !adaptiveReads || buffer.readableBytes == 0 {
            } else if buffer.readableBytes > Self.recordSize {
                largeReadsLeft = Self.largeReads
            } else if largeReadsLeft > 0 {
                largeReadsLeft -= 1
            }
        }
        var lastCode: Int32 = 0
        while buffer.readableBytes < limit {
            var rc: Int32 = 0
            // A read that fills the first record grows the buffer once, to
            // `limit` plus the record that crosses it: growing it record by
            // record reallocated and copied it up to three times (~180
            // instructions per 128 B message at full load, wave 9 profile).
            // A small read keeps its small buffer (payload slices pin it until commit).
            if buffer.writableBytes < Self.recordSize {
                // Nothing left to decrypt in this call (no record OpenSSL
                // holds, no lent ciphertext unread): the next SSL_read could
                // only say "want more". Return what was read instead of
                // growing the buffer to `limit` for it (a realloc to 128 KiB:
                // ~35,000 instructions per handshake in relayd, for HELLO and
                // close_notify; wave 15). The caller reads again until wantMore.
                guard SSL_has_pending(ssl) == 1 || bioState.pointee.input_length > 0 else { break }
                buffer.reserveCapacity(minimumWritableBytes: limit + Self.recordSize - buffer.readableBytes)
            }
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.recordSize) { raw in
                // OpenSSL writes at most raw.count bytes into the buffer's free space.
                guard let base = raw.baseAddress else { return 0 }
                rc = SSL_read(ssl, base, Int32(min(raw.count, Int(Int32.max))))
                return rc > 0 ? Int(rc) : 0
            }
            if rc <= 0 {
                lastCode = rc
                break
            }
        }
        if buffer.readableBytes > 0 {
            // A pending close_notify or error is seen again on the next call.
            return .data(buffer)
        }
        let error = SSL_get_error(ssl, lastCode)
        if error == relay_SSL_ERROR_WANT_READ() || error == relay_SSL_ERROR_WANT_WRITE() { return .wantMore }
        if error == relay_SSL_ERROR_ZERO_RETURN() { return .closeNotify }
        return .failed(classifyFailure(duringHandshake: false))
    }

    static let recordSize = 16_384
    /// The most a record adds to its plaintext with the AEAD suites Relay
    /// allows: TLS 1.2 AES-GCM's header 5, explicit nonce 8 and tag 16 (TLS
    /// 1.3: header 5, inner type 1, tag 16). With less room lent, every
    /// TLS 1.2 record would go through the spill buffer.
    static let recordOverhead = 29

    /// Encrypts a whole buffer into `output`, one SSL_write_ex per record
    /// (16 KiB), each record written by OpenSSL straight into `output`'s free
    /// space (no copy out of a BIO).
    func write(_ buffer: ByteBuffer, into output: inout ByteBuffer) -> TLSError? {
        // Handshake or alert bytes still spilled go out before these records.
        drainOutput(into: &output)
        var failure: TLSError? = nil
        buffer.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let length = min(raw.count - offset, Self.recordSize)
                OpenSSLErrorQueue.clear()
                // SSL_write_ex reads `length` bytes of `raw` during the call only.
                let ok = withOutputLent(into: &output, room: length + Self.recordOverhead) { () -> Bool in
                    var written = 0
                    return SSL_write_ex(ssl, base + offset, length, &written) == 1 && written == length
                }
                guard ok else {
                    failure = classifyFailure(duringHandshake: false)
                    return
                }
                offset += length
            }
        }
        return failure
    }

    /// Queues our close_notify.
    func shutdown() {
        OpenSSLErrorQueue.clear()
        _ = withInboundLent { SSL_shutdown(ssl) }
        OpenSSLErrorQueue.clear()
    }

    /// Works out why the last call failed, from the verify result and the
    /// error queue: a peer certificate we refused, a missing client
    /// certificate, an alert the peer sent, or another protocol error.
    private func classifyFailure(duringHandshake: Bool) -> TLSError {
        var codes: [UInt] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            codes.append(code)
        }
        let verifyResult = SSL_get_verify_result(ssl)
        if verifyResult != relay_X509_V_OK() {
            // The chain as far as OpenSSL built it (kept after a failure too),
            // borrowed from `ssl` for this call.
            var chain: [OpaquePointer] = []
            if let built = SSL_get0_verified_chain(ssl) {
                for index in 0..<relay_sk_X509_num(built) { if let x509 = relay_sk_X509_value(built, index) { chain.append(x509) } }
            }
            return core.rejection(code: Int32(verifyResult), chain: chain, serverName: serverName)
        }
        for code in codes where relay_ERR_GET_LIB(code) == relay_ERR_LIB_SSL() {
            let reason = relay_ERR_GET_REASON(code)
            if reason == relay_SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE() { return .noPeerCertificate }
            let offset = relay_SSL_AD_REASON_OFFSET()
            if reason >= offset && reason < offset + 256 {
                let alert = reason - offset
                return .alertReceived(code: Int(alert), description: String(cString: SSL_alert_desc_string_long(alert)))
            }
            if reason == relay_SSL_R_UNEXPECTED_EOF_WHILE_READING() { return .unexpectedEOF(duringHandshake: duringHandshake) }
        }
        let detail = codes.isEmpty ? "connection failed without detail from OpenSSL" : codes.map(OpenSSLErrorQueue.describe).joined(separator: "; ")
        return duringHandshake ? .handshakeFailed(reason: detail) : .protocolError(reason: detail)
    }

    /// The verified chain (leaf first, DER), its earliest expiry, and the
    /// negotiated protocol version and cipher. `leaf` is the peer's
    /// certificate with its subject already extracted: when it is the
    /// certificate that expires first, the expiry names it by that subject
    /// instead of reading the name again.
    func handshakeSummary(leaf: (certificate: OwnedCertificate, subject: DistinguishedName)? = nil)
        -> (chain: PeerCertificateChain, version: String, cipher: String)? {
        // SSL_get0_verified_chain is borrowed from `ssl`; we copy each DER.
        guard let chain = SSL_get0_verified_chain(ssl), relay_sk_X509_num(chain) > 0 else { return nil }
        var ders: [[UInt8]] = []
        var certificates: [OpaquePointer] = []
        for index in 0..<relay_sk_X509_num(chain) {
            guard let x509 = relay_sk_X509_value(chain, index) else { continue }
            certificates.append(x509)
            X509_up_ref(x509)
            ders.append(OwnedCertificate(takingOwnership: x509).der)
        }
        // While the chain is borrowed: its expiry, read from the decoded certificates.
        let expiry = withExtendedLifetime(leaf?.certificate) {
            ChainExpiry.earliest(of: certificates, leaf: leaf.map { ($0.certificate.ref, $0.subject) })
        }
        let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "unknown"
        let cipher = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "unknown"
        return (PeerCertificateChain(derCertificates: ders, verifiedExpiry: expiry), version, cipher)
    }

    /// The verified leaf, as a new reference the caller owns.
    func peerLeaf() -> OwnedCertificate? {
        guard let x509 = SSL_get1_peer_certificate(ssl) else { return nil }
        return OwnedCertificate(takingOwnership: x509)
    }
}

/// The peer's verified certificate chain, leaf first, as DER. Kept by the
/// broker so it can be re-verified against a reloaded context's CRLs.
public struct PeerCertificateChain: Sendable, Hashable {
    public var derCertificates: [[UInt8]]
    /// The chain's earliest expiry, read at the handshake (see ``earliestExpiry``).
    public var verifiedExpiry: ChainExpiry?
    public init(derCertificates: [[UInt8]], verifiedExpiry: ChainExpiry? = nil) {
        self.derCertificates = derCertificates
        self.verifiedExpiry = verifiedExpiry
    }
}
