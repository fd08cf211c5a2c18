#!/usr/bin/env bash
# Cross-builds the Windows probe (rollcall-agent.exe) on Debian and packs the
# zip that docs/WINDOWS.md installs from. Uses Debian's packages only:
#   rustc-web + rust-web-src  a compiler with the standard library's sources,
#                             so `-Zbuild-std` builds std for the Windows target
#                             (rustup cannot add Windows targets here);
#   gcc-mingw-w64-x86-64      the linker (.cargo/config.toml names it).
# Target x86_64-win7-windows-gnu: its std uses only APIs that Windows 7 and up
# (and Wine 8, where CI runs the tests) provide; the newer -pc- target's std
# needs bcryptprimitives.dll, which Wine 8 lacks. The binary runs on every
# Windows the runbook's agents run on (Windows 10/11, Server 2016 and later).
#
# Usage: deploy/windows/build.sh [--profile release|dev] [--zip]
# Prints the path of the .exe (and of the zip with --zip) on its last lines.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=release
make_zip=false
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --zip) make_zip=true; shift ;;
        *) echo "usage: $0 [--profile release|dev] [--zip]" >&2; exit 64 ;;
    esac
done

target=x86_64-win7-windows-gnu
# The Debian compiler differs from the workspace's rustup one: its artifacts
# live apart so neither build invalidates the other.
export CARGO_TARGET_DIR="${ROLLCALL_WINDOWS_TARGET_DIR:-$PWD/target/windows}"
export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc
for tool in /usr/bin/rustc /usr/bin/cargo x86_64-w64-mingw32-gcc; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "missing $tool: apt-get install rustc-web rust-web-src gcc-mingw-w64-x86-64" >&2
        exit 69
    }
done

/usr/bin/cargo build -Zbuild-std --target "$target" --profile "$profile" \
    -p rollcall-agent --bin rollcall-agent >&2
out_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
exe="$CARGO_TARGET_DIR/$target/$out_dir/rollcall-agent.exe"
[ -f "$exe" ] || { echo "build did not produce $exe" >&2; exit 70; }

if $make_zip; then
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
    stage="$CARGO_TARGET_DIR/rollcall-agent-$version-windows-x86_64"
    rm -rf "$stage" "$stage.zip"
    mkdir -p "$stage"
    cp "$exe" "$stage/"
    cp deploy/windows/install.cmd deploy/windows/uninstall.cmd "$stage/"
    cp deploy/windows/agent.toml "$stage/agent.toml.template"
    cp deploy/examples/apex-one.toml "$stage/apex-one.toml"
    cp docs/WINDOWS.md "$stage/README-WINDOWS.md"
    (cd "$(dirname "$stage")" && zip -q -r "$(basename "$stage").zip" "$(basename "$stage")")
    echo "$stage.zip"
fi
echo "$exe"
