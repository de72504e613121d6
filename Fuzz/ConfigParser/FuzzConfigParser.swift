// libFuzzer target for relayd's TOML config parser (Fuzz/run-config-parser.sh).
//
// Built with -sanitize=fuzzer,address -DRELAY_FUZZ, libFuzzer supplies main()
// and calls the check below (Fuzz/Support/FuzzDriver.swift). Built normally (a plain `swift build`), it is
// a replay tool: `relay-fuzz-config-parser FILE...` runs each file through the
// same checks, so a crash input can be debugged without sanitizers.
// The checks live in ConfigParserInvariants.swift, which
// Tests/RelayBrokerTests/ConfigCorpus/ links to, so `swift test` replays the
// kept corpus through exactly the same code.
import FuzzSupport

/// Traps on the first broken invariant: that is how a fuzz target reports
/// to libFuzzer, which then saves the input.
func runOne(_ input: UnsafeRawBufferPointer) {
    if let violation = ConfigParserInvariants.violations(input).first {
        preconditionFailure(violation)
    }
}

#if RELAY_FUZZ
@_cdecl("relay_fuzz_config_parser_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc: argc, argv: argv, runOne)
}
#else
@main
struct ReplayConfigParserInputs {
    static func main() { FuzzDriver.replay(tool: "relay-fuzz-config-parser", script: "Fuzz/run-config-parser.sh", runOne) }
}
#endif
