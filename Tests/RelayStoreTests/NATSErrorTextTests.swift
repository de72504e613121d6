import CNATS
import Testing
@testable import RelayJetStream

/// An error from nats.c always says why: nats.c records some failures (a
/// JetStream request that timed out) with an empty last-error text, which
/// once reached an operator as "create stream RELAY: " and nothing else.
@Suite("NATS error text")
struct NATSErrorTextTests {
    @Test("an empty or blank nats.c text falls back to the status's name; a real text is kept")
    func emptyTextFallsBack() {
        #expect(NATSError.reason(lastError: "", status: NATS_TIMEOUT) == "Timeout")
        #expect(NATSError.reason(lastError: "  ", status: NATS_NO_RESPONDERS) == String(cString: natsStatus_GetText(NATS_NO_RESPONDERS)))
        #expect(NATSError.reason(lastError: nil, status: NATS_NO_SERVER) == "No server available for connection")
        #expect(NATSError.reason(lastError: "(conn.c:2088): No server available for connection", status: NATS_NO_SERVER)
            == "(conn.c:2088): No server available for connection")
        let pipelined = NATSError("publish relay.a", NATS_TIMEOUT, jsCode: jsErrCode(0), text: "")
        #expect(pipelined.description == "publish relay.a: Timeout")
    }
}
