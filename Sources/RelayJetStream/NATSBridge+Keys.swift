import CNATS

/// The cursor bucket's keys and values (split from NATSBridge.swift, whose
/// lifetime rules hold here too).
extension NATSConnection {
    /// A key's value and its last revision (the stream sequence of its last
    /// entry, 0 when it has none).
    struct RevisionedValue {
        /// Nil when the key holds no value (never put, purged, or a delete marker last).
        var value: [UInt8]?
        var revision: UInt64
    }

    /// The key's value, read through the bucket stream's leader.
    func get(key: String, waitMs: Int64 = 8_000) throws(NATSError) -> [UInt8]? {
        try getRevisioned(key: key, waitMs: waitMs).value
    }

    /// The key's value and revision, read through the bucket stream's leader.
    func getRevisioned(key: String, waitMs: Int64 = 8_000) throws(NATSError) -> RevisionedValue {
        guard let bucket = bucketName else { throw NATSError("get \(key)", NATS_ILLEGAL_STATE) }
        var msg: OpaquePointer?
        var revision: UInt64 = 0
        // Blocks up to `waitMs` while the bucket's stream elects a leader (see the shim).
        let status = relay_kv_get_from_leader(&msg, &revision, js, bucket, key, waitMs)
        guard status == NATS_OK else { throw NATSError("get \(key)", status) }
        guard let msg else { return RevisionedValue(value: nil, revision: revision) }
        // The message is ours until natsMsg_Destroy; its data is copied first.
        defer { natsMsg_Destroy(msg) }
        let length = Int(natsMsg_GetDataLength(msg))
        guard length > 0, let data = natsMsg_GetData(msg) else { return RevisionedValue(value: [], revision: revision) }
        return RevisionedValue(value: Array(UnsafeRawBufferPointer(start: data, count: length)), revision: revision)
    }

    enum ExpectingPut: Equatable {
        /// Stored; the key's revision is now `revision`.
        case stored(revision: UInt64)
        /// Not stored: the key's last revision is no longer the one expected
        /// (purged, or written by someone else since).
        case wrongLastRevision
    }

    /// Puts `value` under `key` only if the key's last revision is still
    /// `last` (0: only if the key has no entry), a compare-and-set.
    func put(key: String, value: [UInt8], expecting last: UInt64, waitMs: Int64) throws(NATSError) -> ExpectingPut {
        guard let bucket = bucketName else { throw NATSError("put \(key)", NATS_ILLEGAL_STATE) }
        var revision: UInt64 = 0
        var code = jsErrCode(0)
        // `value`'s bytes are valid for the call; js_Publish copies them.
        let status = value.withUnsafeBytes { bytes in
            relay_kv_put_expecting(&revision, js, bucket, key, bytes.baseAddress, Int32(bytes.count), last, waitMs, &code)
        }
        if code == JSStreamWrongLastSequenceErr { return .wrongLastRevision }
        guard status == NATS_OK else { throw NATSError("put \(key)", status, jsCode: code) }
        return .stored(revision: revision)
    }

    /// The keys of the cursor bucket under `filter` (a key filter such as
    /// `c.<owner hex>.>`) that hold a value, without the `$KV.<bucket>.`
    /// prefix: one stream-info request to the bucket stream's leader. A key
    /// whose last entry is a delete marker is listed too (relayd never
    /// deletes cursor keys on this backend).
    func keys(matching filter: String, waitMs: Int64 = 8_000) throws(NATSError) -> [String] {
        guard let bucket = bucketName else { throw NATSError("list \(filter)", NATS_ILLEGAL_STATE) }
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(0)
        let status = relay_kv_subjects(&info, js, bucket, filter, waitMs, &code)
        // The info is ours until jsStreamInfo_Destroy; its subjects are copied first.
        defer { if let info { jsStreamInfo_Destroy(info) } }
        guard status == NATS_OK else { throw NATSError("list \(filter)", status, jsCode: code) }
        guard let subjects = info?.pointee.State.Subjects?.pointee, subjects.Count > 0, let list = subjects.List else { return [] }
        let prefix = "$KV.\(bucket)."
        return (0..<Int(subjects.Count)).compactMap { index -> String? in
            guard let subject = list[index].Subject else { return nil }
            let text = String(cString: subject)
            return text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : nil
        }
    }
}
