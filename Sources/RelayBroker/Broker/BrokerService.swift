import Foundation
import Logging
import RelayStore
import ServiceLifecycle
import UnixSignals

/// relayd's process: runs the broker until SIGTERM/SIGINT (graceful),
/// reloads on SIGHUP and when a watched file changes.
public enum BrokerMain {
    /// - Parameter openLog: opens the message log (relayd's composition root chooses it).
    public static func run(configuration: BrokerConfiguration, overrides: (listen: String?, dataDirectory: String?) = (nil, nil),
                           openLog: MessageLogFactory) async throws {
        LifecycleLog.bootstrap(configuration)
        let logger = Logger(label: "relayd")
        // Trapped before the broker starts, so that from the "listening" line
        // on (a supervisor's cue) SIGHUP is a reload and SIGTERM a graceful
        // stop, never the signal's default action (which ends the process).
        // A signal that arrives while the broker starts waits in its sequence.
        let stopSignals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let reloadSignals = await UnixSignalsSequence(trapping: .sighup)
        let broker: Broker
        do {
            broker = try await Broker.start(configuration: configuration, logger: logger, overrides: overrides, openLog: openLog)
        } catch {
            throw LifecycleLog.startFailed(error)
        }
        // Tests and scripts read the listening lines to find the ports.
        LifecycleLog.started(broker)
        let service = BrokerService(broker: broker, reloadSignals: reloadSignals)
        let group = ServiceGroup(configuration: .init(services: [.init(service: service)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in stopSignals {
                    await group.triggerGracefulShutdown()
                    return
                }
            }
            try await group.run()
            tasks.cancelAll()
        }
        LifecycleLog.stopped()
    }
}

struct BrokerService: Service {
    let broker: Broker
    /// Trapped by ``BrokerMain/run`` before the broker started.
    let reloadSignals: UnixSignalsSequence

    func run() async throws {
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in reloadSignals {
                    broker.reload(trigger: "sighup")
                }
            }
            tasks.addTask { await FileWatcher.watch(broker: broker) }
            tasks.addTask { await StorageSampler.sample(broker: broker) }
            try? await gracefulShutdown()
            tasks.cancelAll()
        }
        await broker.shutdown()
    }
}

/// Polls the config and TLS files every two seconds and reloads when one
/// changed (rotation without SIGHUP). Each path is followed through its
/// symlinks and compared by content (``WatchedFile``), so a Kubernetes
/// `..data` swap and an in-place rewrite both count.
enum FileWatcher {
    static func watch(broker: Broker) async {
        func observe() -> [String: WatchedFile] {
            var out: [String: WatchedFile] = [:]
            for path in broker.context.configuration.watchedFiles { out[path] = WatchedFile.observe(path) }
            return out
        }
        func changed(_ now: [String: WatchedFile], since last: [String: WatchedFile]) -> Bool {
            guard Set(now.keys) == Set(last.keys) else { return true }
            return now.contains { path, file in last[path].map(file.differs(from:)) ?? true }
        }
        var last = observe()
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 2_000_000_000)
            let now = observe()
            if changed(now, since: last) {
                broker.reload(trigger: "file_change")
                // Keep what was seen before the reload for files already
                // watched: a file still being written while the reload read it
                // (a half-copied CRL, a cert without its new key yet) changes
                // again and triggers another reload instead of staying refused.
                // Files the new configuration added start from their current state.
                last = observe().reduce(into: [:]) { out, entry in out[entry.key] = now[entry.key] ?? entry.value }
            }
        }
    }
}

/// Samples the store's size into the relay_storage_bytes gauge every five
/// seconds (``MessageLog/usage()`` is cheap, but not per publish).
enum StorageSampler {
    static func sample(broker: Broker) async {
        while !Task.isCancelled {
            if let usage = try? broker.context.store.usage() {
                broker.context.recordStorageGauges(usage)
            }
            try? await Task.sleep(nanoseconds: 5_000_000_000)
        }
    }
}
