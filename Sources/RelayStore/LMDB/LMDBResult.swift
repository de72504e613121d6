internal import CLMDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns LMDB return codes into ``StoreError``s. Every C call in the wrapper
/// goes through here so no error code is silently dropped.
enum LMDBResult {
    /// The text LMDB gives for a code (covers errno values too).
    static func message(_ code: Int32) -> String {
        // mdb_strerror returns a static string (or strerror's buffer); it is
        // copied into a Swift String immediately.
        guard let c = mdb_strerror(code) else { return "unknown error" }
        return String(cString: c)
    }

    /// Maps a failing code to the error the store reports.
    static func error(_ code: Int32, operation: String, path: String, maxMapSize: Int, maxReaders: Int) -> StoreError {
        switch code {
        case MDB_MAP_FULL:
            return .storageFull(maxMapSize: maxMapSize)
        case MDB_READERS_FULL:
            return .readersFull(maxReaders: maxReaders)
        case MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_PANIC:
            return .corrupted(operation: operation, detail: message(code))
        case MDB_VERSION_MISMATCH, MDB_INVALID, MDB_INCOMPATIBLE:
            return .lmdbVersionMismatch(path: path, detail: message(code))
        default:
            return .lmdb(operation: operation, code: code, message: message(code))
        }
    }
}

/// Limits the error mapper needs, shared by environment, transactions and cursors.
struct LMDBContext: Sendable {
    var path: String
    var maxMapSize: Int
    var maxReaders: Int

    @inline(__always)
    func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(StoreError) {
        if code != 0 {
            throw LMDBResult.error(code, operation: operation(), path: path,
                                   maxMapSize: maxMapSize, maxReaders: maxReaders)
        }
    }
}

/// Builds an `MDB_val` over caller-owned bytes. LMDB only reads through the
/// pointer during the call it is passed to, so the value never outlives the
/// buffer (callers pass it straight into one mdb_* call).
@inline(__always)
func mdbVal(_ bytes: UnsafeRawBufferPointer) -> MDB_val {
    MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
}

/// Views an `MDB_val` returned by LMDB. The memory belongs to the map (or the
/// write transaction's dirty pages); callers use it only inside the closure
/// they received it in, before the transaction ends.
@inline(__always)
func bufferView(_ val: MDB_val) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: val.mv_data, count: val.mv_size)
}

/// Runs `body` over the 8 big-endian bytes of `value`, the key encoding of
/// every sequence-keyed table (big-endian so byte order is numeric order).
@inline(__always) @discardableResult
func withBigEndianBytes<R>(_ value: UInt64,
                           _ body: (UnsafeRawBufferPointer) throws(StoreError) -> R) throws(StoreError) -> R {
    var be = value.bigEndian
    return try withUnsafeBytes(of: &be) { (bytes) throws(StoreError) -> R in try body(bytes) }
}

extension UnsafeRawBufferPointer {
    /// Reads a big-endian UInt64 at `offset` (unaligned-safe).
    @inline(__always)
    func readUInt64BE(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

// Array and String byte access are `rethrows` (untyped); these carry the
// store's typed error through them.
extension Array where Element == UInt8 {
    @inline(__always) @discardableResult
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(StoreError) -> R) throws(StoreError) -> R {
        let result: Result<R, StoreError> = withUnsafeBytes { bytes in
            Result { () throws(StoreError) -> R in try body(bytes) }
        }
        return try result.get()
    }
}

extension String {
    /// The UTF-8 bytes of the string (made contiguous if needed).
    @inline(__always) @discardableResult
    func withUTF8Bytes<R>(_ body: (UnsafeRawBufferPointer) throws(StoreError) -> R) throws(StoreError) -> R {
        var copy = self
        let result: Result<R, StoreError> = copy.withUTF8 { utf8 in
            Result { () throws(StoreError) -> R in try body(UnsafeRawBufferPointer(utf8)) }
        }
        return try result.get()
    }
}
