#!/usr/bin/env bash
# dependent-package.sh - proves that another package can depend on Relay.
# `make test` runs it after the test suites; it exits non-zero on any failure.
#
# 1. The root manifest, as a dependent resolves it (`swift package
#    dump-package`), carries no unsafe flags (SwiftPM refuses those in a URL
#    dependency) and exports the RelayClient library and the four executables.
# 2. A throwaway package is written to a temporary directory: its
#    Package.swift depends on this repository with `.package(path:)` and its
#    main.swift subscribes and publishes through `RelayClient` alone.
# 3. It is built: a cold build of the graph RelayClient needs (swift-nio,
#    swift-collections, TOMLKit, four Relay modules) took 52 s on 2 cores,
#    with no other build running; a second run with the same scratch path
#    only relinks. Then its resolved packages are checked: the
#    benchmark package (Benchmarks/ only) and swift-docc-plugin (`make docs`
#    only) must not be among them.
# 4. relayd and relayctl from this repository's debug build (`make test`
#    built them) run with a fresh development PKI (`relayctl pki init`) and
#    config/relay.toml; the throwaway program must round-trip one message
#    through that relayd, over mutual TLS, and exit 0.
#
# Environment:
#   SWIFT                  the swift driver (default swift)
#   DEPENDENT_SCRATCH      the throwaway package's build folder (default
#                          .build-dependent in this repository, kept between
#                          runs so a second run is incremental; CI starts cold)
#   RELAY_BIN_DIR          where relayd and relayctl are (default: the debug
#                          bin path of this repository)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SWIFT="${SWIFT:-swift}"
SCRATCH="${DEPENDENT_SCRATCH:-$ROOT/.build-dependent}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/relay-dependent.XXXXXX")"
RELAYD_PID=""

log() { printf 'dependent-package: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
cleanup() {
  if [[ -n $RELAYD_PID ]]; then kill "$RELAYD_PID" 2>/dev/null || true; wait "$RELAYD_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1. The manifest a dependent sees.
manifest="$(cd "$ROOT" && "$SWIFT" package dump-package)" || die "swift package dump-package failed"
if grep -q '"unsafeFlags"' <<<"$manifest"; then
  die "Package.swift uses .unsafeFlags: a URL dependent cannot build it (pass such flags from the Makefile, RELEASE_FLAGS)"
fi
# The top-level "products" array of the JSON (targets have names too).
products="$(sed -n '/^  "products" : \[/,/^  \]/p' <<<"$manifest")"
for product in RelayClient relayd relay-pub relay-sub relayctl; do
  grep -q "^      \"name\" : \"$product\",\$" <<<"$products" || die "Package.swift exports no product named $product"
done
log "manifest: no unsafe flags; RelayClient, relayd, relay-pub, relay-sub, relayctl exported"

# 2. The throwaway package. A path dependency's identity is its folder's name.
identity="$(basename "$ROOT")"
mkdir -p "$WORK/dependent/Sources/dependent"
cat >"$WORK/dependent/Package.swift" <<EOF
// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "dependent",
    platforms: [.macOS(.v14)],
    dependencies: [.package(path: "$ROOT")],
    targets: [
        .executableTarget(
            name: "dependent",
            dependencies: [.product(name: "RelayClient", package: "$identity")]
        ),
    ]
)
EOF
cat >"$WORK/dependent/Sources/dependent/main.swift" <<'EOF'
// Subscribes, publishes one message and waits for it, with RelayClient only.
// Exit status: 0 when the message came back intact, 1 otherwise.
import Foundation
import RelayClient

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("dependent: \(message)\n".utf8))
    exit(1)
}

let environment = ProcessInfo.processInfo.environment
guard let portText = environment["RELAY_PORT"], let port = Int(portText),
      let pki = environment["RELAY_PKI"] else {
    fail("RELAY_PORT and RELAY_PKI must be set")
}
let configuration = RelayClientConfiguration(
    host: "127.0.0.1", port: port,
    certificatePath: "\(pki)/billing.pem", privateKeyPath: "\(pki)/billing.key", caPath: "\(pki)/ca.pem")
let topic = "billing.billing-service.dependent"
let text = "round trip \(UUID().uuidString)"

do {
    let subscriber = try await Subscriber.connect(configuration)
    let subscription = try await subscriber.subscribe(filter: "billing.billing-service.>", from: .latest)
    let publisher = try await Publisher.connect(configuration)
    let receipt = try await publisher.publish(topic: topic, text: text,
                                              headers: [HeaderField(key: "origin", value: "dependent")])
    let received = try await withThrowingTaskGroup(of: ReceivedMessage?.self) { group in
        group.addTask {
            for try await message in subscription { return message }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: .seconds(30))  // the deadline, not a wait for an event
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
    guard let message = received else { fail("no message within 30 s") }
    guard message.topic == topic, message.text == text, message.sequence == receipt.sequence,
          message.publisherPrincipal == "billing-service",
          message.headers == [HeaderField(key: "origin", value: "dependent")] else {
        fail("wrong message: \(message.topic) #\(message.sequence) from \(message.publisherPrincipal): "
            + "\(message.text ?? "<binary>") \(message.headers); sent #\(receipt.sequence) \(text)")
    }
    print("dependent: round trip ok, sequence \(receipt.sequence), publisher \(message.publisherPrincipal)")
    await publisher.close()
    await subscriber.connection.close()
} catch {
    fail("\(error)")
}
EOF

# 3. Build it, and time the build (the figure docs/testing.md quotes).
log "building the throwaway package (scratch path $SCRATCH)"
started=$SECONDS
if ! "$SWIFT" build --package-path "$WORK/dependent" --scratch-path "$SCRATCH" >"$WORK/build.log" 2>&1; then
  tail -n 60 "$WORK/build.log" >&2
  die "the throwaway package that depends on Relay by path did not build (its build log's end is above)"
fi
log "built in $((SECONDS - started)) s"
# Neither the micro-benchmarks' package nor the docs plugin may reach a dependent.
for unwanted in benchmark swift-docc-plugin; do
  if [[ -e $SCRATCH/checkouts/$unwanted ]]; then
    die "a dependent of RelayClient resolved $unwanted ($SCRATCH/checkouts/$unwanted): it must not be in what a dependent resolves"
  fi
done
[[ -d $SCRATCH/checkouts/swift-nio ]] || die "no checkouts in $SCRATCH/checkouts: the check above would prove nothing"
dependent="$("$SWIFT" build --package-path "$WORK/dependent" --scratch-path "$SCRATCH" --show-bin-path)/dependent"
[[ -x $dependent ]] || die "no executable at $dependent"

# 4. A real relayd with a fresh development PKI.
BIN="${RELAY_BIN_DIR:-$(cd "$ROOT" && "$SWIFT" build --show-bin-path)}"
[[ -x $BIN/relayd && -x $BIN/relayctl ]] || die "relayd/relayctl not built in $BIN (run swift build first)"
mkdir -p "$WORK/broker/config"
"$BIN/relayctl" pki init --dir "$WORK/broker/dev/pki" >"$WORK/pki.log" 2>&1 \
  || die "relayctl pki init failed: $(cat "$WORK/pki.log")"
# config/relay.toml as shipped (its paths are relative to its folder), with
# the metrics listener on a free port so it cannot collide with anything.
sed 's/^listen = "127.0.0.1:9464"/listen = "127.0.0.1:0"/' "$ROOT/config/relay.toml" >"$WORK/broker/config/relay.toml"
grep -q '^listen = "127.0.0.1:0"' "$WORK/broker/config/relay.toml" \
  || die "config/relay.toml no longer has the metrics listener this script moves to a free port"
(cd "$WORK/broker" && exec "$BIN/relayd" --config config/relay.toml --listen 127.0.0.1:0) >"$WORK/relayd.log" 2>&1 &
RELAYD_PID=$!
# Wait for the line relayd prints once it listens (polled: it is a file).
port=""
for _ in $(seq 1 600); do
  port="$(sed -n 's/.*relayd listening on [^ "]*:\([0-9][0-9]*\).*/\1/p' "$WORK/relayd.log" | head -n 1)"
  [[ -n $port ]] && break
  kill -0 "$RELAYD_PID" 2>/dev/null || die "relayd exited: $(cat "$WORK/relayd.log")"
  sleep 0.1
done
[[ -n $port ]] || die "relayd did not say it was listening within 60 s: $(cat "$WORK/relayd.log")"

if ! RELAY_PORT="$port" RELAY_PKI="$WORK/broker/dev/pki" "$dependent"; then
  die "the throwaway package's round trip through relayd failed; relayd's log: $(cat "$WORK/relayd.log")"
fi
log "ok: a package that depends on Relay by path round-tripped a message through relayd"
