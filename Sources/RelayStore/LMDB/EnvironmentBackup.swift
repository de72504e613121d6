import Glibc
import Foundation

extension Environment {
    /// Streams a compacted copy (``copyCompacted(to:)``) through a pipe: a
    /// thread of its own runs the LMDB copy into the write end while the
    /// caller reads the other end and hands `sink` chunks of at most
    /// `chunkSize` bytes, so no temporary file is written (the broker may
    /// only be allowed to write its data directory, and a copy there would
    /// double the disk use). When `sink` throws, the rest of the copy is
    /// read and dropped rather than the read end closed: LMDB would get
    /// EPIPE (and the process SIGPIPE) writing to a closed pipe.
    func streamCompactedCopy(chunkSize: Int, to sink: (ArraySlice<UInt8>) throws -> Void) throws -> Int {
        var ends: [Int32] = [-1, -1]
        // `ends` outlives the call; pipe() fills both slots or fails.
        guard pipe(&ends) == 0 else {
            throw StoreError.lmdb(operation: "pipe(backup)", code: errno, message: String(cString: strerror(errno)))
        }
        let readEnd = ends[0], writeEnd = ends[1]
        let copyResult = CopyOutcome()
        let copier = Thread { [self] in
            do throws(StoreError) { try self.copyCompacted(to: writeEnd) } catch { copyResult.set(error) }
            // Closing the write end gives the reader its end of file.
            Glibc.close(writeEnd)
            copyResult.finish()
        }
        copier.stackSize = 1 << 20
        copier.start()
        defer { Glibc.close(readEnd) }
        // Never more than `chunkSize` per piece: the caller sizes it to the
        // client's frame limit (a 4,096-byte floor here once overran 1,024).
        var buffer = [UInt8](repeating: 0, count: max(1, chunkSize))
        var total = 0
        var sinkError: (any Error)?
        while true {
            // `buffer` is a live array of buffer.count bytes for the whole call.
            let n = buffer.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                sinkError = sinkError ?? StoreError.lmdb(operation: "read(backup pipe)", code: code,
                                                         message: String(cString: strerror(code)))
                break
            }
            if n == 0 { break }
            total += n
            guard sinkError == nil else { continue }  // drain: see above
            do { try sink(buffer[0..<n]) } catch { sinkError = error }
        }
        copyResult.wait()
        if let error = copyResult.error { throw error }
        if let sinkError { throw sinkError }
        return total
    }
}

/// The copy thread's outcome, handed to the reading thread.
private final class CopyOutcome: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var done = false
    private var failure: StoreError?

    func set(_ error: StoreError) {
        condition.lock()
        failure = error
        condition.unlock()
    }

    func finish() {
        condition.lock()
        done = true
        condition.broadcast()
        condition.unlock()
    }

    func wait() {
        condition.lock()
        while !done { condition.wait() }
        condition.unlock()
    }

    var error: StoreError? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }
}
