#!/usr/bin/env bash
# Builds the Debian package target/debian/sitewatch_VERSION-1_ARCH.deb:
# the release binary, its man pages and shell completions (from the binary's
# hidden `generate` subcommand, into target/dist), then `cargo deb`. The
# debug symbols go to target/debian/sitewatch-dbgsym_VERSION-1_ARCH.ddeb.
# Prints the path of the .deb.
#
#   scripts/package.sh                # the release package
#   scripts/package.sh --fast         # arguments go to `cargo deb`; --fast
#                                     # compresses less (xz: ~30 s more)
#   PROFILE=dev NO_BUILD=1 scripts/package.sh --fast
#       packs target/debug/sitewatch as it is (CI: the binary that
#       `cargo test` builds anyway, instead of a release build of minutes)
#
# Needs cargo-deb 3.x: cargo install cargo-deb --locked
# Install the result with: apt install ./target/debian/sitewatch_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-release}
case "$PROFILE" in
dev | test) profile_dir=debug ;;
*) profile_dir=$PROFILE ;;
esac
bin=${CARGO_TARGET_DIR:-target}/$profile_dir/sitewatch

if ! cargo deb --version >/dev/null 2>&1; then
    echo "package.sh: cargo-deb is missing: cargo install cargo-deb --locked" >&2
    exit 1
fi

if [ "${NO_BUILD:-}" != 1 ]; then
    cargo build --profile "$PROFILE" --locked
fi
if [ ! -x "$bin" ]; then
    echo "package.sh: no binary at $bin" >&2
    exit 1
fi

rm -rf target/dist
"$bin" generate man target/dist/man >/dev/null
for shell in bash zsh fish; do
    "$bin" generate completions "$shell" target/dist/completions >/dev/null
done

# Start from an empty output directory so that `sitewatch_*.deb` is this one.
rm -rf target/debian
mkdir -p target/debian
cargo deb --no-build --profile "$PROFILE" --locked --output target/debian/ "$@" >/dev/null

ls target/debian/sitewatch_*.deb
