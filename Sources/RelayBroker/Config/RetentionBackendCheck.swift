/// `[[retention]]` rules the storage backend cannot apply are refused at
/// load (start-up, `--check-config` and reload alike), never ignored: an
/// ignored byte limit is a topic that grows until the whole log is full.
extension ConfigParser {
    /// The jetstream backend has no per-topic byte count to prune by
    /// (JetStream 2.9 limits bytes per stream, and per subject only the number
    /// of messages), so a rule's `max_bytes` is refused there; `max_messages`
    /// and `max_age` are applied, and `[storage] max_size` bounds the stream.
    func checkRetentionForBackend(_ config: BrokerConfiguration) throws(ConfigError) {
        guard config.storage.backend == .jetstream else { return }
        for (index, rule) in config.retention.enumerated() where rule.maxBytes != nil {
            throw ConfigError(
                file: file, key: "retention[\(index)].max_bytes",
                message: "the jetstream backend cannot apply a per-topic max_bytes (for \"\(rule.filter)\"): JetStream "
                    + "limits bytes per stream, not per topic. Remove it and bound the topic with max_messages or max_age, "
                    + "or bound the whole stream with [storage] max_size (docs/cluster.md, \"What differs\")")
        }
    }
}
