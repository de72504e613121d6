extension Frame {
    /// The human-readable `message` of PUBERR, SUBACK, ERR, BYE and ADMINREPLY:
    /// text for people, so it may be shortened to fit the peer's frame limit
    /// (relay-v1.md §2); the fields a program reads never are.
    public var humanMessage: String? {
        switch self {
        case .publishError(let f): return f.message
        case .subscribeAck(let f): return f.message
        case .error(let f): return f.message
        case .bye(let f): return f.message
        case .adminReply(let f): return f.message
        default: return nil
        }
    }

    /// This frame with its ``humanMessage`` replaced.
    func replacingMessage(_ message: String) -> Frame {
        switch self {
        case .publishError(var f): f.message = message; return .publishError(f)
        case .subscribeAck(var f): f.message = message; return .subscribeAck(f)
        case .error(var f): f.message = message; return .error(f)
        case .bye(var f): f.message = message; return .bye(f)
        case .adminReply(var f): f.message = message; return .adminReply(f)
        default: return self
        }
    }

    /// This frame with its ``humanMessage`` cut (at a character boundary, ending
    /// in "…") so that the whole frame's `length` is at most `maxFrameSize`;
    /// nil when the frame has no message or would not fit even without it.
    /// A broker answer quoting names (a durable and its filter, 255 bytes
    /// each) can outgrow the smallest limit a client may announce (1,024).
    public func shorteningMessage(toFit maxFrameSize: Int) -> Frame? {
        guard let message = humanMessage, let full = try? replacingMessage("").encoded() else { return nil }
        let budget = maxFrameSize - (full.readableBytes - 4)
        let ellipsis = "…"
        guard budget >= 0 else { return nil }
        if message.utf8.count <= budget { return self }
        guard budget >= ellipsis.utf8.count else { return replacingMessage("") }
        var kept = ""
        var used = ellipsis.utf8.count
        for character in message {
            let size = character.utf8.count
            guard used + size <= budget else { break }
            kept.append(character)
            used += size
        }
        return replacingMessage(kept + ellipsis)
    }
}
