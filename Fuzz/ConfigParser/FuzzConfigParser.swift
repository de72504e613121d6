// libFuzzer target for relayd's TOML config parser (Fuzz/run-config-parser.sh).
//
// Built with -sanitize=fuzzer,address -DRELAY_FUZZ, libFuzzer supplies main()
// and calls the callback below. Built normally (a plain `swift build`), it is
// a replay tool: `relay-fuzz-config-parser FILE...` runs each file through the
// same checks, so a crash input can be debugged without sanitizers.
// The checks live in ConfigParserInvariants.swift, which
// Tests/RelayBrokerTests/ConfigCorpus/ links to, so `swift test` replays the
// kept corpus through exactly the same code.
#if RELAY_FUZZ
import CLibFuzzer
#else
import Foundation
#endif

/// Traps on the first broken invariant: that is how a fuzz target reports
/// to libFuzzer, which then saves the input.
func runOne(_ input: UnsafeRawBufferPointer) {
    if let violation = ConfigParserInvariants.violations(input).first {
        preconditionFailure(violation)
    }
}

#if RELAY_FUZZ
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    runOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// SwiftPM links Linux executables with `main` aliased to `<module>_main`;
/// defining it here hands the process to libFuzzer's driver.
@_cdecl("relay_fuzz_config_parser_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        runOne(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
#else
@main
struct ReplayConfigParserInputs {
    static func main() {
        let files = CommandLine.arguments.dropFirst()
        if files.isEmpty {
            print("usage: relay-fuzz-config-parser FILE...  (replays fuzz inputs; see Fuzz/run-config-parser.sh)")
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("cannot read \(file)")
                continue
            }
            data.withUnsafeBytes { runOne($0) }
            print("ok \(file)")
        }
    }
}
#endif
