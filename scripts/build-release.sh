#!/usr/bin/env bash
# Builds the static Linux binaries the regional runners fetch (scripts/launch-regions.sh uploads
# the one for the instance type's architecture): x86_64-unknown-linux-musl always, and
# aarch64-unknown-linux-musl (Graviton) when its Rust target and a cross C compiler are here.
# Each lands at target/<triple>/release/edgeload with edgeload.sha256 beside it. Static (musl,
# no glibc version needed), stripped; any Linux of the architecture runs them.
#
# usage: scripts/build-release.sh [--arch x86_64|aarch64|all]   (default: all that can be built)
# Needs: the Rust target (rustup target add x86_64-unknown-linux-musl) and musl-gcc (Debian:
# musl-tools); for aarch64 also gcc-aarch64-linux-gnu and rustup's aarch64-unknown-linux-musl.
set -euo pipefail
cd "$(dirname "$0")/.."
want=all
while (($#)); do
    case "$1" in
        --arch) want=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
has_target() { rustc --print sysroot | xargs -I{} test -d "{}/lib/rustlib/$1"; }
built=()
build() {  # arch, C compiler for the target's C code (ring), its Debian package
    local cc=$2 triple="$1-unknown-linux-musl"
    if ! has_target "$triple"; then
        echo "$triple: no Rust target (rustup target add $triple)" >&2; return 1
    fi
    if ! command -v "$cc" > /dev/null; then
        echo "$triple: no C compiler $cc (Debian: apt-get install ${3})" >&2; return 1
    fi
    local up; up=$(tr 'a-z-' 'A-Z_' <<< "$triple")
    echo "== $triple" >&2
    # rustc links musl targets statically with its own musl; the host's cc links x86_64, a
    # cross gcc the others (musl-gcc as the linker would make a dynamic binary)
    local linker=()
    [ "$1" = "$(uname -m)" ] || linker=("CARGO_TARGET_${up}_LINKER=$cc")
    env "CC_${triple//-/_}=$cc" ${linker[@]+"${linker[@]}"} CARGO_PROFILE_RELEASE_STRIP=symbols \
        cargo build --release --locked --target "$triple"
    local out="target/$triple/release/edgeload"
    if LC_ALL=C readelf -l "$out" | grep -q 'Requesting program interpreter'; then
        echo "$out is not static (it names a program interpreter)" >&2; return 1
    fi
    (cd "$(dirname "$out")" && sha256sum edgeload > edgeload.sha256)
    echo "$out: $(du -h "$out" | cut -f1), sha256 $(cut -d' ' -f1 "$out.sha256")" >&2
    built+=("$out")
}
case $want in
    x86_64) build x86_64 musl-gcc musl-tools ;;
    aarch64) build aarch64 aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu ;;
    all)
        build x86_64 musl-gcc musl-tools
        build aarch64 aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu ||
            echo "aarch64 skipped: Graviton instance types need it" >&2
        ;;
    *) echo "--arch $want: x86_64, aarch64 or all" >&2; exit 2 ;;
esac
printf 'built: %s\n' "${built[@]}"
