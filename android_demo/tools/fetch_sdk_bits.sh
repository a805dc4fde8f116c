#!/usr/bin/env bash
# Fetch the two Android build pieces that Debian bookworm lacks -- android.jar for API 23
# (libandroid-23-java) and the dx dexer (dalvik-exchange) -- from Debian bullseye, using a
# PRIVATE apt configuration (own sources.list, lists and cache dirs). System apt sources,
# lists and caches are never touched; no root needed.
#
# Usage: fetch_sdk_bits.sh CACHE_DIR
# On success prints two lines "ANDROID_JAR=..." and "DX_JAR=..." (paths inside CACHE_DIR).
# Exit 77 when the packages cannot be fetched (callers treat that as "skip", with the reason
# printed on stderr); any other non-zero exit is a real error.
set -euo pipefail

cache="${1:?usage: fetch_sdk_bits.sh CACHE_DIR}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
root="$cache/root"
android_jar="$root/usr/share/java/com.android.android-23.jar"
dx_jar="$root/usr/share/java/com.android.dx-10.0.0.jar"
packages=(libandroid-23-java dalvik-exchange)

emit() { echo "ANDROID_JAR=$android_jar"; echo "DX_JAR=$dx_jar"; }
skip() { echo "fetch_sdk_bits: SKIP: $*" >&2; exit 77; }

if [[ -s "$android_jar" && -s "$dx_jar" ]]; then emit; exit 0; fi

command -v apt-get >/dev/null || skip "apt-get not available (not a Debian-like system)"
command -v dpkg-deb >/dev/null || skip "dpkg-deb not available"

# The Debian mirror the system already uses (first non-security Debian URI), else deb.debian.org.
system_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -r "$f" ]] || continue
    grep -hoE '(^URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]+' "$f" \
      | grep -oE '[a-z]+://[^[:space:]]+' | grep -v -- '-security' | grep -iE 'debian' | head -n1
  done | head -n1
}
mirror="${GS_DEBIAN_MIRROR:-$(system_mirror || true)}"
mirror="${mirror:-http://deb.debian.org/debian}"

apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/debs"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed=""
[[ -r "$keyring" ]] && signed="[signed-by=$keyring] "
echo "deb ${signed}${mirror} bullseye main" > "$apt_dir/sources.list"

apt_opts=(
  -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
  -o "Debug::NoLocking=1" -o "APT::Sandbox::User=$(id -un)"
)
log="$apt_dir/apt.log"
echo "fetch_sdk_bits: bullseye from $mirror (private apt config in $apt_dir)" >&2
apt-get "${apt_opts[@]}" update >"$log" 2>&1 \
  || skip "apt-get update for bullseye failed ($mirror): $(tail -n 3 "$log" | tr '\n' ' ')"
targets=()
for p in "${packages[@]}"; do targets+=("$p/bullseye"); done
(cd "$cache/debs" && apt-get "${apt_opts[@]}" download "${targets[@]}") >>"$log" 2>&1 \
  || skip "apt-get download ${packages[*]} from bullseye failed: $(tail -n 3 "$log" | tr '\n' ' ')"

for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
[[ -s "$android_jar" && -s "$dx_jar" ]] || { echo "fetch_sdk_bits: jars missing after extraction" >&2; exit 1; }
emit
