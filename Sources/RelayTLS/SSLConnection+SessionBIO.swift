import NIOCore
internal import COpenSSL

/// The session BIO's method (Sources/COpenSSL/shim.h), made once and never
/// freed; OpenSSL only reads it after BIO_meth_new, so every session on every
/// event loop shares it. nil only if OpenSSL is out of memory at first use.
nonisolated(unsafe) let sessionBIOMethod: OpaquePointer? = relay_session_bio_method_new()

/// How ciphertext moves between the channel and OpenSSL: lent windows over
/// the caller's buffers for the length of one call, instead of copies into
/// and out of memory BIOs. Every pointer stored in `bioState` is cleared
/// before the closure that made it valid returns; the assertions check that
/// no window outlives its call.
extension SSLConnection {
    /// Keeps received ciphertext until OpenSSL reads it (no copy: the
    /// buffer is retained as the channel gave it). Bytes left from an
    /// earlier call come first; only then is one copied onto the other.
    func receive(_ buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        guard var pending = inbound else {
            inbound = buffer
            return
        }
        inbound = nil  // `pending` is then the storage's only owner here: append without a copy-on-write of the rest
        var more = buffer
        pending.writeBuffer(&more)
        inbound = pending
    }

    /// Runs `call` (SSL_do_handshake, the SSL_read loop, SSL_shutdown) with
    /// the unread inbound ciphertext lent to the BIO, then keeps what OpenSSL
    /// did not read for the next call.
    func withInboundLent<Result>(_ call: () -> Result) -> Result {
        assert(bioState.pointee.input == nil, "an inbound window outlived its call")
        guard let pending = inbound else { return call() }
        let (result, unread) = pending.withUnsafeReadableBytes { raw -> (Result, Int) in
            // `raw` is valid only inside this closure, and `pending` keeps the
            // storage alive for it; the BIO holds the pointer only until
            // `call` returns and it is cleared just below.
            bioState.pointee.input = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            bioState.pointee.input_length = raw.baseAddress == nil ? 0 : raw.count
            let result = call()
            let unread = bioState.pointee.input_length
            bioState.pointee.input = nil
            bioState.pointee.input_length = 0
            return (result, unread)
        }
        if unread == 0 {
            inbound = nil  // drop the channel's buffer as soon as it is read
        } else {
            var rest = pending
            rest.moveReaderIndex(forwardBy: rest.readableBytes - unread)
            inbound = rest
        }
        return result
    }

    /// Runs `call` (one SSL_write_ex) with `room` bytes (at least) of
    /// `output`'s free space lent to the BIO, so the record is written there
    /// directly; anything beyond the lent space spilled and is appended after.
    func withOutputLent(into output: inout ByteBuffer, room: Int, _ call: () -> Bool) -> Bool {
        assert(bioState.pointee.output == nil, "an outbound window outlived its call")
        var result = false
        output.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { space in
            // `space` is `output`'s free space, valid only inside this
            // closure; the BIO holds it only until `call` returns and it is
            // cleared before the closure reports how much was written.
            bioState.pointee.output = space.baseAddress?.assumingMemoryBound(to: UInt8.self)
            bioState.pointee.output_capacity = space.baseAddress == nil ? 0 : space.count
            bioState.pointee.output_length = 0
            result = call()
            let written = bioState.pointee.output_length
            bioState.pointee.output = nil
            bioState.pointee.output_capacity = 0
            bioState.pointee.output_length = 0
            return written
        }
        drainOutput(into: &output)
        return result
    }

    /// Appends the spilled ciphertext (handshake flights, alerts,
    /// close_notify, a record larger than the lent room) to `output`.
    func drainOutput(into output: inout ByteBuffer) {
        let pending = bioState.pointee.spill_length
        guard pending > 0, let spill = bioState.pointee.spill else { return }
        // `spill` is owned by the BIO and not touched by OpenSSL during this copy.
        output.writeBytes(UnsafeRawBufferPointer(start: spill, count: pending))
        // Spills are rare after the handshake (alerts, tickets): give the
        // buffer back rather than keep it for the connection's lifetime.
        relay_session_bio_release_spill(bioState)
    }

    /// Takes all pending ciphertext OpenSSL produced, or nil if none.
    func takeOutput(allocator: ByteBufferAllocator) -> ByteBuffer? {
        let pending = bioState.pointee.spill_length
        guard pending > 0 else { return nil }
        var buffer = allocator.buffer(capacity: pending)
        drainOutput(into: &buffer)
        return buffer
    }
}
