import NIOCore
import RelayCore
import RelayStore
import RelayTLS

extension BrokerConfiguration {
    /// The TLS listener's configuration from `[tls]`.
    public var tlsServerConfiguration: TLSServerConfiguration {
        TLSServerConfiguration(
            certificateChain: .file(tls.certificate), privateKey: .file(tls.privateKey),
            clientCAs: tls.clientCA.map { .file($0) }, crls: tls.crl.map { .file($0) },
            crlMissing: TLSMissingCRLPolicy(rawValue: tls.crlMissing) ?? .refuse,
            minimumVersion: tls.minVersion == "1.2" ? .tls12 : .tls13,
            handshakeTimeout: .nanoseconds(tls.handshakeTimeoutNanos))
    }

    /// The store's configuration from `[storage]` and `[[retention]]`.
    public var storeConfiguration: StoreConfiguration {
        var store = StoreConfiguration(directory: storage.path)
        switch storage.durability {
        case .fsync: store.durability = .fsync
        case .async: store.durability = .async(syncInterval: .nanoseconds(storage.syncIntervalNanos))
        }
        store.maxMapSize = Int(storage.maxSize)
        store.initialMapSize = Int(min(storage.maxSize, 64 << 20))
        store.dedup.maxAge = .nanoseconds(storage.dedupWindowNanos)
        store.pageCacheTail = storage.pageCacheTail
        store.retention = retention.compactMap { rule in
            // Filters were validated by the parser.
            guard let filter = try? TopicFilter(rule.filter) else { return nil }
            return RetentionRule(filter: filter, maxAge: rule.maxAgeNanos.map { .nanoseconds($0) },
                                 maxMessages: rule.maxMessages.map { Int($0) }, maxBytes: rule.maxBytes.map { Int($0) })
        }
        return store
    }

    /// Every file the broker reads, for reload-on-change.
    public var watchedFiles: [String] {
        var files = [sourceFile, tls.certificate, tls.privateKey] + tls.clientCA + tls.crl
        // Watched so that renewing them is noticed: the reload then connects
        // to NATS again with them (Broker+NATSRenewal.swift).
        if storage.backend == .jetstream, let nats = storage.jetstream {
            files += [nats.ca, nats.certificate, nats.privateKey]
        }
        return files
    }
}

/// Checks what parsing cannot: that the TLS material loads (key matches
/// certificate, CAs and CRLs parse), and with the jetstream backend that the
/// files relayd presents to NATS load and have not expired.
public enum BrokerConfigurationCheck {
    /// Everything a start needs: `relayd --check-config`, `relayctl config check`.
    public static func deepCheck(_ configuration: BrokerConfiguration) throws {
        try reloadCheck(configuration)
        try NATSClientFiles.check(configuration)
    }

    /// What a reload applies: the TLS material and the policy. The NATS
    /// files are checked only when they changed on disk (a renewal:
    /// Broker+NATSRenewal.swift), so a reload of [tls] or [acl] is not
    /// refused because the NATS certificate in use lapsed.
    static func reloadCheck(_ configuration: BrokerConfiguration) throws {
        _ = try TLSServerContext(configuration: configuration.tlsServerConfiguration)
        _ = try configuration.makePolicy()
    }
}
