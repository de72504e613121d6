// libFuzzer target for identity extraction from DER certificates
// (Fuzz/run-certificate-identity.sh).
//
// Built with -sanitize=fuzzer,address -DRELAY_FUZZ, libFuzzer supplies main()
// and calls the check below (Fuzz/Support/FuzzDriver.swift). Built normally (a plain `swift build`), it is
// a replay tool: `relay-fuzz-certificate-identity FILE...` runs each file
// through the same checks, so a crash input can be debugged without sanitizers.
// The checks live in CertificateIdentityInvariants.swift, which
// Tests/RelayTLSTests/DERCorpus/ links to, so `swift test` replays the
// kept corpus through exactly the same code.
import FuzzSupport

/// Traps on the first broken invariant: that is how a fuzz target reports
/// to libFuzzer, which then saves the input.
func runOne(_ input: UnsafeRawBufferPointer) {
    if let violation = CertificateIdentityInvariants.violations(input).first {
        preconditionFailure(violation)
    }
}

#if RELAY_FUZZ
@_cdecl("relay_fuzz_certificate_identity_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc: argc, argv: argv, runOne)
}
#else
@main
struct ReplayCertificateIdentityInputs {
    static func main() { FuzzDriver.replay(tool: "relay-fuzz-certificate-identity", script: "Fuzz/run-certificate-identity.sh", runOne) }
}
#endif
