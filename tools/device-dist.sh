#!/usr/bin/env bash
# Puts the built dist/ into the GPU kit as .device/dist.tar.xz (about 0.6 MB instead of 3.4 MB carried as files),
# which .device/env.sh unpacks on the GPU machine when no dist/ came with the call. With it, a kit that holds
# onnxruntime-node (WITH_ORT=1 bash tools/device-pack.sh) fits the 64 MiB a device call may carry:
#   npm run build && bash tools/device-dist.sh     then carry [".device"] only
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .device ] || { echo "no .device/: run tools/device-pack.sh first" >&2; exit 2; }
[ -f dist/bin/loom.js ] || [ -d dist/src ] || { echo "no built dist/: run npm run build first" >&2; exit 2; }
tar -cf - dist | xz -T2 -9 >.device/dist.tar.xz
grep -q 'dist.tar.xz' .device/env.sh || cat >>.device/env.sh <<'SH'
# dist/ from the kit (tools/device-dist.sh) unless the call carried one
if [ -f .device/dist.tar.xz ] && [ ! -d dist ]; then tar -xJf .device/dist.tar.xz; fi
SH
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
kit=$(du -sb .device | cut -f1)
total=$(((tree + ${untracked:-0} + kit) / 1048576))
echo ".device/dist.tar.xz: $(du -h .device/dist.tar.xz | cut -f1); working tree + kit: ${total} MiB of the 64 MiB a call carries"
