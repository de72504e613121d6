import Logging
import RelayBroker
import RelayJetStream
import RelayStore

/// `[storage] backend`: LMDB (the default) or a JetStream stream shared with other edges.
enum MessageLogChoice {
    static func factory(for storage: BrokerConfiguration.Storage) -> MessageLogFactory {
        guard storage.backend == .jetstream, let js = storage.jetstream else {
            return { configuration, logger in try MessageStore.open(configuration, logger: logger) }
        }
        var settings = JetStreamSettings(endpoint: NATSEndpoint(servers: js.servers, caFile: js.ca,
                                                                certificateFile: js.certificate, privateKeyFile: js.privateKey))
        settings.stream = js.stream
        settings.replicas = js.replicas
        settings.publishTimeout = .nanoseconds(js.publishTimeoutNanos)
        settings.retryBackoff = .nanoseconds(js.retryBackoffNanos)
        settings.startupTimeout = .nanoseconds(js.startupTimeoutNanos)
        settings.recordFormat = js.recordFormat == "v1" ? .v1 : .v2  // the parser allows only these two
        return { [settings] configuration, logger in
            logger.info("message log: JetStream stream \(settings.stream) (R\(settings.replicas)) on \(settings.endpoint.servers.joined(separator: ","))")
            return try JetStreamMessageLog.open(configuration, settings: settings, logger: logger)
        }
    }
}
