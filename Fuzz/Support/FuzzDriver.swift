// What every Relay fuzz target shares: the libFuzzer entry points when built
// with -sanitize=fuzzer -DRELAY_FUZZ (Fuzz/run-*.sh), and the replay tool a
// plain `swift build` makes of the same target (`relay-fuzz-X FILE...`), so
// a crash input can be debugged without sanitizers. A target supplies only
// its check, a function that traps on the first broken invariant.
#if RELAY_FUZZ
import CLibFuzzer
#else
import Foundation
#endif

public enum FuzzDriver {
    /// The running target's check. Set once, before libFuzzer starts calling
    /// back; libFuzzer calls from one thread.
    nonisolated(unsafe) static var check: ((UnsafeRawBufferPointer) -> Void)?

    /// One input from libFuzzer. The buffer is libFuzzer's, valid for the call.
    static func testOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        guard let data, let check else { return 0 }
        check(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }

    #if RELAY_FUZZ
    /// Hands the process to libFuzzer's driver. Call it from the target's
    /// `<module>_main` (SwiftPM links Linux executables with `main` aliased
    /// to it), passing argc/argv through.
    public static func run(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                           _ check: @escaping (UnsafeRawBufferPointer) -> Void) -> CInt {
        FuzzDriver.check = check
        var argc = argc
        var argv = argv
        return LLVMFuzzerRunDriver(&argc, &argv) { data, size in FuzzDriver.testOne(data, size) }
    }
    #else
    /// Runs each file named on the command line through `check`.
    public static func replay(tool: String, script: String, _ check: (UnsafeRawBufferPointer) -> Void) {
        let files = CommandLine.arguments.dropFirst()
        if files.isEmpty {
            print("usage: \(tool) FILE...  (replays fuzz inputs; see \(script))")
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("cannot read \(file): check the path and its permissions")
                continue
            }
            data.withUnsafeBytes { check($0) }
            print("ok \(file)")
        }
    }
    #endif
}

#if RELAY_FUZZ
/// libFuzzer's library refers to this symbol; `FuzzDriver.run` is what drives.
@_cdecl("LLVMFuzzerTestOneInput")
public func relayFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.testOne(data, size)
}
#endif
