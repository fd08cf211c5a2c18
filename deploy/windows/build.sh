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
# Usage: deploy/windows/build.sh [--profile release|dev] [--zip] [--msi]
# Prints the path of the .exe (and of the zip with --zip) on its last lines;
# with --msi the last line is the .msi's path.
#
# --msi (msitools' wixl, osslsigncode: Debian packages) stages the exe
# stripped, its debug information apart (rollcall-agent.exe.debug, linked by
# .gnu_debuglink, for crash analysis), checks the exe against the size
# budget (ROLLCALL_EXE_BUDGET_BYTES, 12 MiB), builds
# rollcall-agent-VERSION-x64.msi from deploy/windows/rollcall-agent.wxs and,
# when ROLLCALL_SIGN_CERT and ROLLCALL_SIGN_KEY name PEM files (the
# organisation's code-signing certificate chain and key;
# ROLLCALL_SIGN_KEY_PASS its passphrase, ROLLCALL_SIGN_TIMESTAMP_URL an
# RFC 3161 timestamp server), Authenticode-signs the exe before it is
# packed and then the MSI. ROLLCALL_MSI_VERSION overrides the MSI's version
# (a.b.c, default the workspace version).
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=release
make_zip=false
make_msi=false
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --zip) make_zip=true; shift ;;
        --msi) make_msi=true; shift ;;
        *) echo "usage: $0 [--profile release|dev] [--zip] [--msi]" >&2; exit 64 ;;
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

# Authenticode with the organisation's certificate, from the environment.
sign() {
    local file="$1"
    [ -n "${ROLLCALL_SIGN_CERT:-}" ] && [ -n "${ROLLCALL_SIGN_KEY:-}" ] || return 0
    local args=(sign -certs "$ROLLCALL_SIGN_CERT" -key "$ROLLCALL_SIGN_KEY" -h sha256
        -n "rollcall agent" -i "https://github.com/rollcall" -in "$file" -out "$file.signed")
    [ -n "${ROLLCALL_SIGN_KEY_PASS:-}" ] && args+=(-pass "$ROLLCALL_SIGN_KEY_PASS")
    [ -n "${ROLLCALL_SIGN_TIMESTAMP_URL:-}" ] && args+=(-ts "$ROLLCALL_SIGN_TIMESTAMP_URL")
    osslsigncode "${args[@]}" >&2
    mv "$file.signed" "$file"
    echo "signed $file" >&2
}

if $make_msi; then
    for tool in wixl osslsigncode x86_64-w64-mingw32-objcopy x86_64-w64-mingw32-strip; do
        command -v "$tool" >/dev/null 2>&1 || {
            echo "missing $tool: apt-get install wixl msitools osslsigncode binutils-mingw-w64-x86-64" >&2
            exit 69
        }
    done
    version=${ROLLCALL_MSI_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)}
    stage="$CARGO_TARGET_DIR/msi-$version"
    rm -rf "$stage"
    mkdir -p "$stage"
    x86_64-w64-mingw32-objcopy --only-keep-debug "$exe" "$stage/rollcall-agent.exe.debug"
    x86_64-w64-mingw32-strip --strip-all -o "$stage/rollcall-agent.exe" "$exe"
    x86_64-w64-mingw32-objcopy --add-gnu-debuglink="$stage/rollcall-agent.exe.debug" "$stage/rollcall-agent.exe"
    budget=${ROLLCALL_EXE_BUDGET_BYTES:-12582912}
    size=$(stat -c %s "$stage/rollcall-agent.exe")
    echo "rollcall-agent.exe stripped: $size bytes (budget $budget)" >&2
    [ "$size" -le "$budget" ] || { echo "rollcall-agent.exe is over its size budget: $size > $budget bytes" >&2; exit 1; }
    sign "$stage/rollcall-agent.exe"
    cp deploy/windows/agent.toml "$stage/agent.toml.template"
    cp deploy/examples/apex-one.toml "$stage/apex-one.toml"
    cp docs/WINDOWS.md "$stage/README-WINDOWS.md"
    msi="$CARGO_TARGET_DIR/rollcall-agent-$version-x64.msi"
    # wixl finds the File sources relative to where it runs: the stage.
    (cd "$stage" && wixl -a x64 -D Version="$version" -o "$msi" "$OLDPWD/deploy/windows/rollcall-agent.wxs") >&2
    sign "$msi"
    echo "rollcall-agent-$version-x64.msi: $(stat -c %s "$msi") bytes" >&2
    echo "$msi"
fi
