// libFuzzer target for RelayPolicy's template expansion and rule evaluation
// (Fuzz/run-policy-template.sh).
//
// Built with -sanitize=fuzzer,address -DRELAY_FUZZ, libFuzzer supplies main()
// and calls the check below (Fuzz/Support/FuzzDriver.swift). Built normally (a plain `swift build`), it is
// a replay tool: `relay-fuzz-policy-template FILE...` runs each file through
// the same checks without sanitizers.
// The input format (PolicyFuzzInput.swift) and the checks
// (PolicyInvariants.swift) are linked from Tests/RelayPolicyTests/TemplateCorpus/,
// so `swift test` replays the kept corpus through exactly the same code.
import RelayPolicy
import FuzzSupport

/// One input is text, one `key=value` a line (the value runs to the end of
/// the line and may hold any byte but newline):
/// - identity attributes: `subject.<ATTR>`, `issuer.<ATTR>` (ATTR a short
///   name from ``oids`` or a dotted OID), `san.dns`, `san.uri`, `san.email`,
///   `san.ip`, `spiffe` (also a URI SAN; the SPIFFE ID when it is valid);
/// - a policy: `rule` starts a rule (its name), `match.<key>` adds a
///   pattern, `publish`, `subscribe`, `deny_publish`, `deny_subscribe` add a
///   filter, `principal` sets the principal template.
///
/// The identity is evaluated against the fuzzed policy (when it compiles)
/// and against ``fixedPolicy``, which templates every attribute in every
/// list, so fuzzed attribute values alone reach the expansion code. A
/// broken invariant traps: that is how a fuzz target reports to libFuzzer.
func runOne(_ input: UnsafeRawBufferPointer) {
    let parsed = FuzzInput(text: String(decoding: input, as: UTF8.self))
    if let policy = try? Policy(definitions: parsed.rules, principal: parsed.principal),
       let violation = PolicyInvariants.violations(policy, parsed.identity).first {
        preconditionFailure(violation)
    }
    if let violation = PolicyInvariants.violations(fixedPolicy, parsed.identity).first {
        preconditionFailure(violation)
    }
}

#if RELAY_FUZZ
@_cdecl("relay_fuzz_policy_template_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc: argc, argv: argv, runOne)
}
#else
@main
struct ReplayPolicyTemplateInputs {
    static func main() { FuzzDriver.replay(tool: "relay-fuzz-policy-template", script: "Fuzz/run-policy-template.sh", runOne) }
}
#endif
