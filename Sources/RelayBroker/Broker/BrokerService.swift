import Foundation
import Logging
import RelayStore
import ServiceLifecycle
import UnixSignals

/// relayd's process: runs the broker until SIGTERM/SIGINT (graceful),
/// reloads on SIGHUP (and, with `[reload] watch = true`, when a watched file changes).
public enum BrokerMain {
    /// - Parameter openLog: opens the message log (relayd's composition root chooses it).
    /// - Parameter createDataDirectory: `relayd --init` (see ``Broker/start(configuration:logger:overrides:createDataDirectory:openLog:)``).
    public static func run(configuration: BrokerConfiguration, overrides: (listen: String?, dataDirectory: String?) = (nil, nil),
                           createDataDirectory: Bool = false, openLog: MessageLogFactory) async throws {
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
            broker = try await Broker.start(configuration: configuration, logger: logger, overrides: overrides,
                                            createDataDirectory: createDataDirectory, openLog: openLog)
        } catch {
            throw LifecycleLog.startFailed(error)
        }
        // Tests and scripts read the listening lines to find the ports.
        LifecycleLog.started(broker)
        let systemd = SystemdNotifier(logger: logger)
        await systemd.notify("READY=1\nMAINPID=\(getpid())\nSTATUS=listening on \(configuration.server.host):\(broker.port)", logger: logger)
        let service = BrokerService(broker: broker, reloadSignals: reloadSignals, systemd: systemd)
        let group = ServiceGroup(configuration: .init(services: [.init(service: service)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in stopSignals {
                    await systemd.notify("STOPPING=1", logger: logger)
                    await group.triggerGracefulShutdown()
                    return
                }
            }
            try await group.run()
            tasks.cancelAll()
        }
        // Logged already; relayd's status says the stop was not clean.
        if broker.leftStoreOpen { throw BrokerStopFailure() }
        LifecycleLog.stopped()
    }
}

/// The shutdown left the store open (``Broker/leftStoreOpen``, logged):
/// relayd exits 1.
public struct BrokerStopFailure: Error {}

struct BrokerService: Service {
    let broker: Broker
    /// Trapped by ``BrokerMain/run`` before the broker started.
    let reloadSignals: UnixSignalsSequence
    let systemd: SystemdNotifier

    /// The one reload entry point (SIGHUP, the file watcher and the admin
    /// surface's `reload` all end in ``Broker/reload(trigger:)``).
    func reload(trigger: ReloadTrigger) -> ReloadOutcome { broker.reload(trigger: trigger) }

    func run() async throws {
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in reloadSignals {
                    await systemd.notify(SystemdNotifier.reloadingState(), logger: broker.context.logger)
                    // The trail first, so this reload's own line is in the new
                    // file when the operator renamed the old one (rotation).
                    broker.reopenAuditTrail()
                    let outcome = broker.reload(trigger: .sighup)
                    let status = outcome.isApplied ? "configuration reloaded" : "reload refused; the previous configuration stays"
                    await systemd.notify("READY=1\nSTATUS=\(status)", logger: broker.context.logger)
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
