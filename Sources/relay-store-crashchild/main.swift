// relay-store-crashchild: appends to a store until killed, printing every
// acknowledged message as "<sequence> <fnv1a64 of payload>" on stdout.
// The crash test (Tests/RelayStoreTests/CrashTests.swift) SIGKILLs it at
// random moments and checks that every printed message survived intact.
//
// Usage: relay-store-crashchild <store directory>
import Foundation
import NIOCore
import RelayCore
import RelayStore

#if canImport(Glibc)
import Glibc
#endif

/// FNV-1a, 64-bit: a cheap digest both sides compute identically.
func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        hash ^= UInt64(b)
        hash &*= 0x0000_0100_0000_01B3
    }
    return hash
}

/// Writes straight to fd 1 (no stdio buffer): a line printed is a line the
/// parent can read even if the process dies right after.
func emit(_ line: String) {
    var line = line
    line.withUTF8 { utf8 in
        var offset = 0
        while offset < utf8.count {
            let n = write(1, utf8.baseAddress.map { $0 + offset }, utf8.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    FileHandle.standardError.write("usage: relay-store-crashchild <store directory>\n".data(using: .utf8) ?? Data())
    exit(2)
}

do {
    var configuration = StoreConfiguration(directory: arguments[1])
    configuration.initialMapSize = 1 << 20   // small, so crashes also hit map growth
    configuration.maxMapSize = 1 << 30
    let store = try MessageStore.open(configuration)
    let topics = try [Topic("crash.a"), Topic("crash.b.c")]
    let publisher = PublisherStamp(principal: "spiffe://test/crash", fingerprint: CertificateFingerprint(w0: 0xabab_abab_abab_abab, w1: 0xabab_abab_abab_abab, w2: 0xabab_abab_abab_abab, w3: 0xabab_abab_abab_abab))
    let inFlight = DispatchSemaphore(value: 4)
    var generator = SystemRandomNumberGenerator()
    emit("ready\n")
    while true {
        inFlight.wait()
        let count = Int.random(in: 1...64, using: &generator)
        var batch: [NewMessage] = []
        var digests: [UInt64] = []
        for _ in 0..<count {
            // Mostly small records, some spanning LMDB overflow pages.
            let size = Int.random(in: 0...30, using: &generator) == 0
                ? Int.random(in: 4_000...20_000, using: &generator) : Int.random(in: 0...600, using: &generator)
            var payload = ByteBufferAllocator().buffer(capacity: size)
            var word = generator.next()
            for i in 0..<size {
                if i % 8 == 0 { word = generator.next() }
                payload.writeInteger(UInt8(truncatingIfNeeded: word >> ((i % 8) * 8)))
            }
            digests.append(payload.withUnsafeReadableBytes(fnv1a))
            let topic = topics[Int.random(in: 0..<topics.count, using: &generator)]
            // One header, n = the payload size, in the protocol's block encoding.
            var header = ByteBuffer()
            header.writeInteger(UInt16(1))
            header.writeString("n")
            header.writeInteger(UInt16("\(size)".utf8.count))
            header.writeString("\(size)")
            batch.append(NewMessage(topic: topic, payload: payload, headers: HeaderBlock(count: 1, encoded: header),
                                    publisher: publisher))
        }
        let expected = digests
        store.append(batch) { results in
            var lines = ""
            for (index, result) in results.enumerated() {
                switch result {
                case .success(let receipt): lines += "\(receipt.sequence) \(String(expected[index], radix: 16))\n"
                case .failure(let error): lines += "error \(error)\n"
                }
            }
            emit(lines)
            inFlight.signal()
        }
    }
} catch {
    FileHandle.standardError.write("relay-store-crashchild: \(error)\n".data(using: .utf8) ?? Data())
    exit(1)
}
