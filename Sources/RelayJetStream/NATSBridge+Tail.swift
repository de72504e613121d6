import CNATS
import Foundation
import NIOCore

/// The live tail's ordered consumer: the part of ``NATSConnection`` that
/// opens and closes it (split from NATSBridge.swift, whose lifetime rules
/// hold here too: every method runs while the caller holds `self`).
extension NATSConnection {
    /// Calls `deliver` with (stream sequence, subject, data) for every message
    /// of `subject` from `startSequence` on that `skip` does not skip, in
    /// stream order, on nats.c's delivery thread (one per subscription, so
    /// calls never overlap). `skip` sees the data in place (valid only during
    /// the call): a skipped message is never copied. Until
    /// ``unsubscribeOrdered()``; then it may be called again. A handler call
    /// already running when it returns may still finish (nats.c's rule).
    func subscribeOrdered(stream: String, subject: String, startSequence: UInt64,
                          skip: @escaping @Sendable (UInt64, UnsafeRawBufferPointer) -> Bool,
                          deliver: @escaping @Sendable (UInt64, String?, ByteBuffer) -> Void) throws(NATSError) {
        tailLock.lock()
        defer { tailLock.unlock() }
        guard subscription == nil else { throw NATSError("subscribe to \(subject): the tail is already open", NATS_ILLEGAL_STATE) }
        let box = TailBox(skip: skip, deliver: deliver)
        // Retained here, released by the subscription's completion callback
        // (set below), which nats.c calls once the subscription is closed
        // and its handler has returned for the last time: the handler never
        // sees a freed box, however the subscription ends.
        let context = Unmanaged.passRetained(box).toOpaque()
        var sub: OpaquePointer?
        let status = relay_js_subscribe_ordered(&sub, js, stream, subject, startSequence, { _, _, msg, closure in
            guard let msg else { return }
            // The callback owns `msg` and must destroy it; its data is copied first.
            defer { natsMsg_Destroy(msg) }
            guard let closure else { return }
            // Alive: the completion callback, which releases it, runs only after this handler returned.
            let box = Unmanaged<TailBox>.fromOpaque(closure).takeUnretainedValue()
            var sequence = relay_js_stream_sequence(msg)
            if sequence == 0 {
                // Not the reply subject relay_js_stream_sequence knows: nats.c parses it.
                var meta: UnsafeMutablePointer<jsMsgMetaData>?
                guard natsMsg_GetMetaData(&meta, msg) == NATS_OK, let meta else { return }
                sequence = meta.pointee.Sequence.Stream
                jsMsgMetaData_Destroy(meta)
            }
            // The data is valid until natsMsg_Destroy (deferred above).
            let length = Int(natsMsg_GetDataLength(msg))
            if box.skip(sequence, UnsafeRawBufferPointer(start: length > 0 ? natsMsg_GetData(msg) : nil, count: length)) { return }
            // The subject (the topic of a format 2 record) is copied too.
            let subject = natsMsg_GetSubject(msg).map { String(cString: $0) }
            box.deliver(sequence, subject, NATSConnection.copyData(msg))
        }, context)
        guard status == NATS_OK, let sub else {
            // js_Subscribe failed: it closed what it had made before any
            // consumer existed, so no handler ran or will run with `context`.
            Unmanaged<TailBox>.fromOpaque(context).release()
            throw NATSError("subscribe to \(subject)", status)
        }
        let completion = natsSubscription_SetOnCompleteCB(sub, { closure in
            // nats.c: the subscription is closed and its handler has returned for the last time.
            guard let closure else { return }
            let box = Unmanaged<TailBox>.fromOpaque(closure)
            box.takeUnretainedValue().finished.signal()
            box.release()
        }, context)
        // NATS_INVALID_SUBSCRIPTION: closed already (the connection is
        // closing); the box then stays allocated (a few dozen bytes), as
        // a handler may still be running with it.
        _ = completion
        subscription = sub
        tailFinished = completion == NATS_OK ? box.finished : nil

    }

    /// Closes the ordered consumer ``subscribeOrdered(stream:subject:startSequence:skip:deliver:)``
    /// opened (nats.c deletes it on the server); nothing when none is open.
    /// With `waitMs` > 0 it returns only once the consumer's handler has
    /// returned for the last time (or `waitMs` passed: false), so a consumer
    /// opened next cannot deliver while this one still does. Never wait
    /// from the handler itself.
    @discardableResult
    func unsubscribeOrdered(waitMs: Int64 = 0) -> Bool {
        let (open, finished) = tailLock.withLock { () -> (Bool, DispatchSemaphore?) in
            guard let sub = subscription else { return (false, nil) }
            defer { (subscription, tailFinished) = (nil, nil) }
            natsSubscription_Unsubscribe(sub)
            // Frees the handle; the box goes with the completion callback.
            natsSubscription_Destroy(sub)
            return (true, tailFinished)
        }
        guard open, waitMs > 0 else { return true }
        // No completion callback was set: nothing tells when the handler ends.
        guard let finished else { return false }
        return finished.wait(timeout: .now() + .milliseconds(Int(waitMs))) == .success
    }
}

/// The Swift closure an ordered consumer's C callback reaches through its
/// `closure` pointer.
private final class TailBox: @unchecked Sendable {
    let skip: @Sendable (UInt64, UnsafeRawBufferPointer) -> Bool
    let deliver: @Sendable (UInt64, String?, ByteBuffer) -> Void
    /// Signalled by the completion callback (``NATSConnection/unsubscribeOrdered(waitMs:)``).
    let finished = DispatchSemaphore(value: 0)
    init(skip: @escaping @Sendable (UInt64, UnsafeRawBufferPointer) -> Bool,
         deliver: @escaping @Sendable (UInt64, String?, ByteBuffer) -> Void) {
        (self.skip, self.deliver) = (skip, deliver)
    }
}
