import NIOCore
@testable import RelayBroker
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The reset half of `SessionCloseTests/killedSubscriber`: which socket
/// errors name a session's end. A killed client sends a reset instead of a
/// FIN only when relayd's last bytes were unread, which an end-to-end test
/// cannot arrange every time.
@Suite("session close reasons of socket errors")
struct SessionCloseReasonTests {
    @Test("a TCP reset or a broken pipe is connection_reset; other errors stay connection_error")
    func resetIsNamed() {
        #expect(SessionHandler.connectionErrorReason(IOError(errnoCode: ECONNRESET, reason: "read(descriptor:pointer:size:)")) == "connection_reset")
        #expect(SessionHandler.connectionErrorReason(IOError(errnoCode: EPIPE, reason: "write")) == "connection_reset")
        #expect(SessionHandler.connectionErrorReason(IOError(errnoCode: ETIMEDOUT, reason: "read")) == "connection_error")
        #expect(SessionHandler.connectionErrorReason(ChannelError.ioOnClosedChannel) == "connection_error")
    }
}
