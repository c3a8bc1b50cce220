#!/usr/bin/env bash
# The GPU kit on Node 24: ../shared/device/pack.sh writes .device/ (node_modules for the lent GPU machine,
# which has no registry, and env.sh), with this project's exclusions; then the Node binary in it is swapped
# for the Node 24 LTS one that tools/node24.sh installs, so the GPU machine runs what CI runs.
#   WITH_ORT=1 bash tools/device-pack.sh     (onnxruntime's linux/x64 binaries: the GPU oracle tests need them)
# Then call the device tool with carry [".device", "dist"] (dist: `npm run build` here; TypeScript itself does
# not travel) and a command starting with `source .device/env.sh &&`.
set -euo pipefail
cd "$(dirname "$0")/.."
kit=${LOOM_DEVICE_KIT:-../shared/device/pack.sh}
[ -f "$kit" ] || { echo "no GPU kit at $kit (set LOOM_DEVICE_KIT)" >&2; exit 2; }
# shellcheck source=tools/node24.sh
source tools/node24.sh
# left out: what only linting, the browser test, the OCR fixtures and the TypeScript build need
export SKIP=${SKIP:-"onnxruntime-web @gutenye @ricky0123 @biomejs playwright-core typescript protobufjs/cli @types uglify-js"}
bash "$kit"
echo "replacing the kit's Node with $("$LOOM_NODE_BIN/node" --version), stripped (its static symbol table only: addons link
against the dynamic one); recompressing at xz -9e (a few minutes)"
tmp=$(mktemp)
cp "$LOOM_NODE_BIN/node" "$tmp"
chmod 755 "$tmp" # mktemp made it 0600: cp into it keeps that
strip "$tmp" # 127 -> 109 MB; 2.5 MB less to carry once compressed
"$tmp" -e 'process.exit(0)' || { echo "the stripped Node does not run" >&2; exit 1; }
xz -T2 -9e -c "$tmp" >.device/node.xz
rm -f "$tmp"
# the kit compresses fast (-3); -9 saves ~3 MB of the 64 MiB a call may carry
xz -dc .device/node_modules.tar.xz | xz -T2 -9 >.device/node_modules.tar.xz.new
mv -f .device/node_modules.tar.xz.new .device/node_modules.tar.xz
s=$(du -sm .device | cut -f1)
echo ".device: ${s} MiB (the device tool carries 64 MiB with the working tree)"
