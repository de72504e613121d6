// libFuzzer target for the relay v1 frame decoder (Fuzz/run-frame-decoder.sh).
//
// Built with -sanitize=fuzzer,address -DRELAY_FUZZ, libFuzzer supplies main()
// and calls the check below (Fuzz/Support/FuzzDriver.swift). Built normally
// (a plain `swift build`), it is a replay tool: `relay-fuzz-frame-decoder
// FILE...` runs each file through the same checks, so a crash input can be
// debugged without sanitizers.
// The checks live in FrameDecoderInvariants.swift, which
// Tests/RelayWireTests/FrameCorpus/ links to, so `swift test` replays the
// kept corpus through exactly the same code.
import FuzzSupport

/// Traps on the first broken invariant: that is how a fuzz target reports
/// to libFuzzer, which then saves the input.
func runOne(_ input: UnsafeRawBufferPointer) {
    if let violation = FrameDecoderInvariants.violations(input).first {
        preconditionFailure(violation)
    }
}

#if RELAY_FUZZ
@_cdecl("relay_fuzz_frame_decoder_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc: argc, argv: argv, runOne)
}
#else
@main
struct ReplayFrameDecoderInputs {
    static func main() { FuzzDriver.replay(tool: "relay-fuzz-frame-decoder", script: "Fuzz/run-frame-decoder.sh", runOne) }
}
#endif
