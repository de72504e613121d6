#!/bin/bash
# Checks what `make install PREFIX=DIR` put in DIR (make check-install, part
# of make test): the four binaries, their man pages, the systemd unit and
# the example config; each page renders with man(1), relayd.1 documents
# --init and --check-config, relay-sub.1 --since, relayctl.1 its admin
# commands; no test tool (relay-soak) is installed. Exits 1 naming the
# first thing missing.
set -u
prefix=${1:?usage: check-install.sh PREFIX}
fail() { echo "check-install: $*" >&2; exit 1; }

for b in relayd relayctl relay-pub relay-sub; do
  [ -x "$prefix/bin/$b" ] || fail "$prefix/bin/$b is missing or not executable"
  [ -s "$prefix/share/man/man1/$b.1" ] || fail "$prefix/share/man/man1/$b.1 is missing (make man)"
done
[ -f "$prefix/lib/systemd/system/relayd.service" ] || fail "the systemd unit is missing"
grep -q "^ExecStart=$prefix/bin/relayd " "$prefix/lib/systemd/system/relayd.service" \
  || fail "the unit's ExecStart does not start $prefix/bin/relayd"
[ -f "$prefix/etc/relay/relay.toml.example" ] || fail "relay.toml.example is missing"
for extra in "$prefix"/bin/* "$prefix"/share/man/man1/*; do
  case "$(basename "$extra")" in
    relayd|relayctl|relay-pub|relay-sub|relayd.1|relayctl.1|relay-pub.1|relay-sub.1) ;;
    *) fail "$extra is installed but is not one of Relay's tools" ;;
  esac
done

# Rendered as a reader sees them: C locale (plain ASCII hyphens), wide
# lines (no hyphenation inside option names), no pager.
render() { LC_ALL=C MANWIDTH=200 man -l -P cat "$1" 2>/dev/null | col -b; }
expect() {  # page, then the texts its rendering must contain
  local page="$prefix/share/man/man1/$1.1" text
  shift
  text=$(render "$page")
  [ -n "$text" ] || fail "man -l $page rendered nothing"
  for want in "$@"; do
    grep -qF -- "$want" <<<"$text" || fail "$page does not document $want"
  done
}
command -v man >/dev/null || fail "man is not installed (make deps installs man-db)"
expect relayd "relayd" "--init" "--check-config" "--data-dir" "--version"
expect relay-sub "relay-sub" "--since" "--from" "--durable" "--timeout"
expect relay-pub "relay-pub" "--topic" "--timeout"
expect relayctl "relayctl" "status" "durables" "backup" "--format"
echo "check-install: $prefix has the binaries, man pages (relayd.1 relayctl.1 relay-pub.1 relay-sub.1), unit and example config"
