import RelayStore
import Testing

/// The stored form of a durable cursor that LMDB and JetStream share:
/// sequence (u64 BE) then the filter, and the older eight-byte record.
@Suite("durable cursor record")
struct DurableCursorTests {
    @Test("a cursor with its filter round-trips; eight bytes alone are an unknown filter; fewer are no cursor")
    func encoding() {
        let bytes = DurableCursor.encode(sequence: 0x0102_0304_0506_0708, filter: "a.*.>")
        #expect(bytes == [1, 2, 3, 4, 5, 6, 7, 8] + Array("a.*.>".utf8))
        #expect(DurableCursor.decode(bytes) == DurableCursor(sequence: 0x0102_0304_0506_0708, filter: "a.*.>"))
        #expect(DurableCursor.decode(bytes.prefix(8)) == DurableCursor(sequence: 0x0102_0304_0506_0708, filter: nil))
        #expect(DurableCursor.decode(bytes.prefix(7)) == nil)
    }
}
