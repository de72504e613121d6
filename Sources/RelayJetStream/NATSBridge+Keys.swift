import CNATS

/// Key listings of the cursor bucket (split from NATSBridge.swift, whose
/// lifetime rules hold here too).
extension NATSConnection {
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
