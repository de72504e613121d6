import Foundation
import Logging
import RelayStore

/// Opening the log at start-up, retried while NATS is unavailable: hosts
/// that boot together start relayd before their NATS servers listen, and a
/// cluster that just formed answers stream requests only once its JetStream
/// meta leader is elected (a CI run saw a stream create time out for 5 s
/// right after the cluster formed). relayd waits up to
/// `[storage.jetstream] startup_timeout`, saying so, and starts as soon as
/// the stream and cursor bucket are ready. Errors that waiting cannot fix (a
/// certificate NATS refuses, a stream whose subjects clash) end it at once.
struct StartupAttempts {
    let settings: JetStreamSettings
    let logger: Logger
    /// At most one "still waiting" line per this interval after the first.
    var logInterval: Duration = .seconds(10)

    /// Calls `attempt` until it succeeds, fails with an error that is not
    /// unavailability, or the start-up timeout would pass during the next
    /// pause. `connection` carries a connection made by an earlier attempt.
    func run(_ attempt: (inout NATSConnection?) throws(NATSError) -> NATSConnection) throws(StoreError) -> NATSConnection {
        let clock = ContinuousClock()
        let deadline = clock.now + settings.startupTimeout
        var pause = settings.retryBackoff
        var connection: NATSConnection?
        var attempts = 0
        var lastLogged: ContinuousClock.Instant?
        while true {
            attempts += 1
            do {
                let nats = try attempt(&connection)
                if attempts > 1 {
                    logger.notice("NATS answered: the JetStream stream and cursor bucket are ready",
                                  metadata: ["stream": "\(settings.stream)", "attempts": "\(attempts)"])
                }
                return nats
            } catch where error.isUnavailable && clock.now + pause < deadline {
                if lastLogged.map({ clock.now - $0 >= logInterval }) ?? true {
                    lastLogged = clock.now
                    logger.warning("""
                        NATS does not answer yet (\(error)); retrying until [storage.jetstream] startup_timeout \
                        (\(Self.seconds(settings.startupTimeout))) passes
                        """, metadata: ["servers": "\(servers)", "attempts": "\(attempts)"])
                }
                Thread.sleep(forTimeInterval: pause.timeInterval)
                pause = min(pause * 2, settings.maxRetryBackoff)
            } catch {
                throw .notOpened(message(error, gaveUp: error.isUnavailable))
            }
        }
    }

    private var servers: String { settings.endpoint.servers.joined(separator: ",") }

    private func message(_ error: NATSError, gaveUp: Bool) -> String {
        let what = "cannot open the JetStream stream \(settings.stream) on \(servers): \(error)"
        guard gaveUp else {
            return what + "; waiting does not fix this (check relayd's NATS certificate, key and CA, and that no other "
                + "stream claims the subjects \(settings.subjectPrefix).>)"
        }
        return what + "; gave up after [storage.jetstream] startup_timeout (\(Self.seconds(settings.startupTimeout))): "
            + "check that the NATS servers run and form a cluster with a JetStream quorum (at least 2 of 3 nodes; "
            + "`curl http://<node>:8222/healthz` answers {\"status\":\"ok\"}), or raise startup_timeout"
    }

    static func seconds(_ duration: Duration) -> String {
        let ms = duration.wholeMilliseconds
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}
