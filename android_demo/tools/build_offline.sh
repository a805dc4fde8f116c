#!/usr/bin/env bash
# Offline build check of the demo app: builds a signed debug APK from the app's real sources
# WITHOUT Gradle or Google Maven (neither is reachable offline), the way aapt/dx/apksigner did
# before Gradle. Needs Debian packages aapt zipalign apksigner kotlin default-jdk-headless
# (installed with apt-get when missing and running as root) and android-23 + dx from bullseye
# (tools/fetch_sdk_bits.sh, cached).
#
# Usage: build_offline.sh [APP_DIR] [OUT_DIR]
#   APP_DIR  the Gradle project (default: the android_demo folder this script lives in)
#   OUT_DIR  build folder (default: APP_DIR/build/offline); the APK is OUT_DIR/gs-mobile-demo.apk
# Env: GS_ANDROID_CACHE (default ~/.cache/gs-mobile/android), GS_ANDROID_PACKAGE.
# Exit 77: a prerequisite cannot be obtained (reason on stderr); callers report a skip.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
app_dir="$(cd "${1:-$here/..}" && pwd)"
out="${2:-$app_dir/build/offline}"
cache="${GS_ANDROID_CACHE:-$HOME/.cache/gs-mobile/android}"
package="${GS_ANDROID_PACKAGE:-com.gsmobile.demo}"
main="$app_dir/app/src/main"
apt_packages=(aapt zipalign apksigner kotlin default-jdk-headless)

skip() { echo "build_offline: SKIP: $*" >&2; exit 77; }
step() { echo "build_offline: $*" >&2; }
# Run a command with its output in LOG; on failure print the log (minus JDK/kotlinc noise) and exit.
run_logged() {
  local log="$1"; shift
  if ! "$@" >"$log" 2>&1; then
    grep -v -e 'Xverify' -e 'obsolete' -e 'bootstrap class path' "$log" >&2 || true
    echo "build_offline: failed: $1 (log: $log)" >&2
    exit 1
  fi
}

ensure_tools() {
  local missing=() t
  for t in aapt zipalign apksigner kotlinc java javac keytool unzip; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    step "installing ${apt_packages[*]} unzip (missing: ${missing[*]})"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${apt_packages[@]}" unzip; } >&2 || skip "apt-get install ${apt_packages[*]} failed"
  else
    skip "missing tools: ${missing[*]} (apt-get install ${apt_packages[*]} unzip)"
  fi
}

ensure_tools
sdk="$("$here/fetch_sdk_bits.sh" "$cache")" || exit $?
android_jar="$(sed -n 's/^ANDROID_JAR=//p' <<<"$sdk")"
dx_jar="$(sed -n 's/^DX_JAR=//p' <<<"$sdk")"
stdlib=/usr/share/java/kotlin-stdlib.jar
[[ -s "$stdlib" ]] || skip "$stdlib missing (Debian package kotlin)"
[[ -s "$main/assets/model.tflite" ]] || echo "build_offline: warning: no assets/model.tflite (run gs-export --android)" >&2

rm -rf "$out"
mkdir -p "$out"/{gen,obj,stub,dex}

# 1. Manifest for aapt: Gradle injects package and SDK levels; add them here.
sed -e "s|<manifest |<manifest package=\"$package\" android:versionCode=\"1\" android:versionName=\"offline\" |" \
    -e "s|<application|<uses-sdk android:minSdkVersion=\"23\" android:targetSdkVersion=\"23\" />\n    <application|" \
    "$main/AndroidManifest.xml" > "$out/AndroidManifest.xml"

# 2. Resources + assets (tflite stored uncompressed so the app can memory-map it), R.java.
step "aapt package"
aapt package -f -m -0 arsc -0 tflite -J "$out/gen" -M "$out/AndroidManifest.xml" -S "$main/res" \
  -A "$main/assets" -I "$android_jar" -F "$out/app.unaligned.apk"

# 3. Compile: R.java, the compile-only Interpreter stub (not packaged), the app's Kotlin sources.
step "javac R + stub"
run_logged "$out/javac-r.log" javac -nowarn -source 8 -target 8 -bootclasspath "$android_jar" -d "$out/obj" \
  $(find "$out/gen" -name '*.java')
run_logged "$out/javac-stub.log" javac -nowarn -source 8 -target 8 -d "$out/stub" \
  $(find "$here/stub" -name '*.java')
step "kotlinc $(find "$main/java" -name '*.kt' | wc -l) files"
run_logged "$out/kotlinc.log" kotlinc -no-reflect -jvm-target 1.8 -Werror \
  -classpath "$android_jar:$out/obj:$out/stub" -d "$out/obj" $(find "$main/java" -name '*.kt')

# 4. Dex the app classes with the Kotlin stdlib (the stub stays out).
step "dx"
java -jar "$dx_jar" --dex --min-sdk-version=23 --output="$out/dex/classes.dex" "$out/obj" "$stdlib"
(cd "$out/dex" && aapt add "$out/app.unaligned.apk" classes.dex >/dev/null)

# 5. Align, sign with a (cached) debug key, verify.
step "zipalign + apksigner"
zipalign -f -p 4 "$out/app.unaligned.apk" "$out/app.aligned.apk"
keystore="$cache/debug.keystore"
[[ -s "$keystore" ]] || keytool -genkeypair -keystore "$keystore" -storepass android -keypass android \
  -alias androiddebugkey -keyalg RSA -keysize 2048 -validity 10000 -dname "CN=Android Debug,O=Android,C=US" \
  -noprompt >/dev/null 2>&1
apksigner sign --ks "$keystore" --ks-pass pass:android --key-pass pass:android \
  --out "$out/gs-mobile-demo.apk" "$out/app.aligned.apk"
apksigner verify "$out/gs-mobile-demo.apk"
echo "$out/gs-mobile-demo.apk"
