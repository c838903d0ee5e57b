#!/usr/bin/env bash
# Installs sitewatch from source as a systemd service, or removes it.
# Idempotent: run it again after a rebuild to upgrade (a running service is
# restarted). Run as root. See docs/operations.md ("Install").
#
#   cargo build --release --locked && scripts/install.sh      # target/release/sitewatch
#   scripts/install.sh /path/to/sitewatch                      # e.g. from `cargo install`
#   scripts/install.sh --uninstall    # keeps /etc/sitewatch and the state
#   scripts/install.sh --purge        # removes those too
#
# Installs, under PREFIX (default /usr/local):
#   bin/sitewatch, share/man/man8/sitewatch*.8,
#   share/bash-completion/completions/sitewatch, share/zsh/site-functions/_sitewatch,
#   share/fish/vendor_completions.d/sitewatch.fish, share/doc/sitewatch/examples/sites.toml
# and /etc/systemd/system/sitewatch.service (ExecStart pointed at PREFIX/bin),
# /etc/sitewatch/sites.toml (the example, only if there is none yet).
#
# DESTDIR=DIR stages everything under DIR and touches no service.
set -euo pipefail
# A binary given by path is relative to where we were called from.
bin=
case "${1:-}" in
-* | "") ;;
*) bin=$(realpath "$1") ;;
esac
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
bindir=$PREFIX/bin
mandir=$PREFIX/share/man/man8
bashdir=$PREFIX/share/bash-completion/completions
zshdir=$PREFIX/share/zsh/site-functions
fishdir=$PREFIX/share/fish/vendor_completions.d
exampledir=$PREFIX/share/doc/sitewatch/examples
unit=/etc/systemd/system/sitewatch.service
confdir=/etc/sitewatch

say() { echo "install.sh: $*"; }
die() {
    echo "install.sh: $*" >&2
    exit 1
}
# systemctl only on the real root of a machine whose PID 1 is systemd.
have_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
    die "run as root (or set DESTDIR to stage the files)"
fi
if [ -z "$DESTDIR" ] && command -v dpkg-query >/dev/null &&
    dpkg-query -W -f='${Status}' sitewatch 2>/dev/null | grep -q ' installed$'; then
    die "the sitewatch package is installed; upgrade or remove it with apt, not this script"
fi

uninstall() {
    if have_systemd && systemctl cat sitewatch.service >/dev/null 2>&1; then
        systemctl disable --now sitewatch.service || true
    fi
    rm -f "$DESTDIR$unit" "$DESTDIR$bindir/sitewatch" \
        "$DESTDIR$mandir"/sitewatch.8 "$DESTDIR$mandir"/sitewatch-*.8 \
        "$DESTDIR$bashdir/sitewatch" "$DESTDIR$zshdir/_sitewatch" \
        "$DESTDIR$fishdir/sitewatch.fish" "$DESTDIR$exampledir/sites.toml"
    rmdir "$DESTDIR$exampledir" "$DESTDIR$PREFIX/share/doc/sitewatch" 2>/dev/null || true
    if have_systemd; then
        systemctl daemon-reload
    fi
    say "removed sitewatch from $PREFIX and $unit"
}

case "${1:-}" in
--uninstall)
    uninstall
    say "kept $confdir and the state in /var/lib/sitewatch (--purge removes them)"
    exit 0
    ;;
--purge)
    uninstall
    # With DynamicUser=yes the state is in /var/lib/private/sitewatch and
    # /var/lib/sitewatch is a symlink to it.
    rm -rf "$DESTDIR$confdir" "$DESTDIR/var/lib/sitewatch" "$DESTDIR/var/lib/private/sitewatch"
    say "removed $confdir and /var/lib/sitewatch"
    exit 0
    ;;
-h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
-*) die "unknown option $1 (try --help)" ;;
esac

bin=${bin:-target/release/sitewatch}
[ -x "$bin" ] || die "no binary at $bin: run cargo build --release --locked, or pass its path"

# A removed (not purged) sitewatch package leaves its unit masked: a
# symlink to /dev/null where our unit goes. Unmask.
if [ -L "$DESTDIR$unit" ] && [ "$(readlink "$DESTDIR$unit")" = /dev/null ]; then
    rm -f "$DESTDIR$unit"
    say "removed the mask $unit left by the removed sitewatch package"
fi
# Was it installed before? Then this is an upgrade: restart it if it runs.
upgrade=false
[ -f "$DESTDIR$unit" ] && upgrade=true

# The binary (unless it is already there, as after `cargo install --root PREFIX`).
if [ "$(realpath "$bin")" != "$(realpath -m "$DESTDIR$bindir/sitewatch")" ]; then
    install -D -m 0755 "$bin" "$DESTDIR$bindir/sitewatch"
fi
installed=$DESTDIR$bindir/sitewatch

# Man pages and completions, from the installed binary itself.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$installed" generate man "$tmp/man" >/dev/null
for shell in bash zsh fish; do
    "$installed" generate completions "$shell" "$tmp/completions" >/dev/null
done
install -d -m 0755 "$DESTDIR$mandir" "$DESTDIR$bashdir" "$DESTDIR$zshdir" "$DESTDIR$fishdir"
install -m 0644 "$tmp"/man/*.8 "$DESTDIR$mandir/"
install -m 0644 "$tmp/completions/sitewatch.bash" "$DESTDIR$bashdir/sitewatch"
install -m 0644 "$tmp/completions/_sitewatch" "$DESTDIR$zshdir/_sitewatch"
install -m 0644 "$tmp/completions/sitewatch.fish" "$DESTDIR$fishdir/sitewatch.fish"

# The example config: always as an example, and as the config only if
# there is none (an edited config is never overwritten).
install -D -m 0644 config/sites.toml "$DESTDIR$exampledir/sites.toml"
if [ -e "$DESTDIR$confdir/sites.toml" ]; then
    say "kept $confdir/sites.toml (the new example is $exampledir/sites.toml)"
else
    install -d -m 0755 "$DESTDIR$confdir"
    install -m 0644 config/sites.toml "$DESTDIR$confdir/sites.toml"
    say "installed the example config as $confdir/sites.toml: edit it"
fi
if ! "$installed" validate --config "$DESTDIR$confdir/sites.toml" >/dev/null; then
    say "warning: $confdir/sites.toml is not valid: sitewatch validate --config $confdir/sites.toml"
fi

# The unit, pointed at the binary installed above.
sed "s|^ExecStart=/usr/bin/sitewatch |ExecStart=$bindir/sitewatch |" \
    systemd/sitewatch.service >"$tmp/sitewatch.service"
grep -q "^ExecStart=$bindir/sitewatch " "$tmp/sitewatch.service" ||
    die "systemd/sitewatch.service has no ExecStart=/usr/bin/sitewatch line to rewrite"
install -D -m 0644 "$tmp/sitewatch.service" "$DESTDIR$unit"

if have_systemd; then
    systemctl daemon-reload
    if $upgrade; then
        systemctl try-restart sitewatch.service
        say "upgraded; restarted sitewatch if it was running"
    else
        say "installed; start it with: systemctl enable --now sitewatch"
    fi
else
    say "installed into ${DESTDIR:-/} (no systemd running here: nothing started)"
fi
