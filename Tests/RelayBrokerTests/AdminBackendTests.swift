import Foundation
import Logging
import NIOCore
import RelayCore
import RelayStore
import RelayTestSupport
import RelayWire
import Testing
@testable import RelayBroker

/// A storage backend that is a `MessageLog` but not a
/// `MessageLogAdministration` (as a replicated backend may be): the admin
/// operations that need the store's admin half answer the typed
/// `admin_not_supported`, the others still work, the session stays open.
/// A log that says what to use instead (`AdministrationAlternatives`, as the
/// JetStream log does for backup) has that text in the refusal.
@Suite("Admin on a backend without MessageLogAdministration")
struct AdminBackendTests {
    @Test("topics, durables, purge and backup answer admin_not_supported (backup with the log's alternative); status still answers")
    func notSupported() async throws {
        let ids = try AdminTestIdentities()
        // The fixture writes the config and PKI; the broker runs in this process on a plain MessageLog.
        try await withRelayd(try ids.fixture(), start: false) { fixture in
            let configuration = try BrokerConfiguration.load(path: fixture.configPath)
            let broker = try await Broker.start(configuration: configuration, logger: Logger(label: "admin-backend-test"),
                                                createDataDirectory: true,
                                                openLog: { store, _ in LogOnly(InMemoryMessageLog(configuration: store)) })
            let client = try await FrameClient.connect(port: broker.port, pki: fixture.pki, as: ids.ops)
            _ = try await client.hello()
            var codes: [String: UInt16] = [:], messages: [String: String] = [:]
            let operations = ["topics", "durables", "purge", "backup", "status"]
            for (index, operation) in operations.enumerated() {
                var body = ByteBuffer()
                if operation == "purge" { body.writeString(#"{"filter":"a.>","confirm":true}"#) }
                try await client.send(.admin(AdminRequest(requestID: UInt32(index + 1), operation: operation, body: body)))
                let reply = try await client.nextReply(where: Self.isAdminReply)
                guard case .adminReply(let answer)? = reply else { continue }
                codes[operation] = answer.code
                messages[operation] = answer.message
            }
            await client.close()
            await broker.shutdown()
            let unsupported = RelayErrorCode.adminNotSupported.rawValue
            #expect(codes == ["topics": unsupported, "durables": unsupported, "purge": unsupported,
                              "backup": unsupported, "status": 0])
            #expect(messages["backup"]?.hasSuffix(": \(LogOnly.backupAlternative)") == true, "\(messages)")
            #expect(messages["topics"]?.contains(LogOnly.backupAlternative) == false, "\(messages)")
        }
    }

    static func isAdminReply(_ frame: Frame) -> Bool {
        if case .adminReply = frame { return true }
        return false
    }
}

/// Only the `MessageLog` half of a log (it forwards; it adds no admin
/// operations), with a word on what to use instead of a backup.
private final class LogOnly: ForwardingMessageLog, AdministrationAlternatives {
    static let backupAlternative = "copy the test's memory instead"
    func alternative(to operation: String) -> String? { operation == "backup" ? Self.backupAlternative : nil }

    init(_ base: InMemoryMessageLog) { super.init(base: base) }
}
