import CNATS
import NIOCore

extension NATSConnection {
    /// The most direct gets one run sends before it awaits a reply.
    static let maxRunLength = 256

    /// Direct gets of the `count` sequences from `first` on, all sent before
    /// the first reply is awaited (shim.h, `relay_js_direct_get_run`): one
    /// round trip for the run, where ``directGet(stream:sequence:nextBySubject:waitMs:)``
    /// takes one per message. Element i is the message at `first + i`, or nil
    /// where the stream answered that it has none (a deleted message, the
    /// end of the stream, a replica behind the leader), answered anything
    /// else, or did not answer within `waitMs`: the caller reads on from the
    /// first nil the careful way. Throws only when the requests could not be
    /// sent.
    func directGetRun(stream: String, first: UInt64, count: Int, waitMs: Int64) throws(NATSError) -> [NATSStoredMessage?] {
        let count = min(max(count, 0), Self.maxRunLength)
        guard count > 0 else { return [] }
        // Lifetimes: `replies` holds `count` message pointers the C call fills
        // (each ours until natsMsg_Destroy, called below for every one after
        // its header strings and data are copied out); the buffer lives for
        // the whole closure. `connection` lives as long as `self` (above).
        return try withUnsafeTemporaryAllocation(of: OpaquePointer?.self, capacity: count) {
            (replies) throws(NATSError) -> [NATSStoredMessage?] in
            guard let base = replies.baseAddress else { return [] }
            let status = relay_js_direct_get_run(base, connection, stream, first, Int32(count), waitMs)
            guard status == NATS_OK else { throw NATSError("read messages \(first)... of \(stream)", status) }
            var messages: [NATSStoredMessage?] = []
            messages.reserveCapacity(count)
            for index in 0..<count {
                guard let msg = replies[index] else {
                    messages.append(nil)
                    continue
                }
                defer { natsMsg_Destroy(msg) }
                // A 404 (or any status) has a Status header and no data; a stored message has its sequence.
                guard relay_nats_header(msg, "Status") == nil,
                      let seqText = relay_nats_header(msg, "Nats-Sequence"), let seq = UInt64(String(cString: seqText)) else {
                    messages.append(nil)
                    continue
                }
                let subject = relay_nats_header(msg, "Nats-Subject").map { String(cString: $0) }
                messages.append(NATSStoredMessage(sequence: seq, subject: subject, data: Self.copyData(msg)))
            }
            return messages
        }
    }
}
