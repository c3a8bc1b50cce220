#!/usr/bin/env bash
# A/B on one GPU in one call: the captured-tick and host-overhead benches on a baseline tree and on this tree,
# so a change to the runtime or the native side is compared on the same card, same machine, same minute.
#   git archive <commit> package.json tsconfig.json ir src codegen runtime models/index.ts models/random.ts \
#     models/zoo native bench/cuda-tick.ts bench/common.ts bench/host-overhead.ts bin | tar -x -C .baseline
#   ln -s ../node_modules .baseline/node_modules
#   bash bench/gpu-ab.sh .baseline OUT_DIR        (on the GPU machine, after `source .device/env.sh`)
# Writes OUT_DIR/{base,new}/{cuda-tick,host-overhead}.log and the benches' JSON; prints both tables.
set -uo pipefail
BASE=${1:?usage: bash bench/gpu-ab.sh BASELINE_DIR OUT_DIR}
OUT=${2:?usage: bash bench/gpu-ab.sh BASELINE_DIR OUT_DIR}
ITERS=${ITERS:-300}
HERE=$(pwd)
mkdir -p "$OUT/base" "$OUT/new"
status=0
run() { # tree, label: build the addon there (if not built), then both benches, OUT pointing at OUT/label
  local tree=$1 label=$2
  (cd "$tree" && { [ -f native/build/Release/loom.node ] || cmake-js compile -d native --out native/build >"$OUT/$label/build.log" 2>&1; } &&
    OUT="$OUT/$label" node --import tsx bench/cuda-tick.ts --iters "$ITERS" >"$OUT/$label/cuda-tick.log" 2>&1 &&
    OUT="$OUT/$label" node --import tsx bench/host-overhead.ts --backend cuda --iters 2000 >"$OUT/$label/host-overhead.log" 2>&1) ||
    { echo "$label failed: see $OUT/$label/*.log"; tail -20 "$OUT/$label"/*.log; status=1; }
}
# interleaved twice (base, new, base, new) so a drifting clock or a warming card shows as a difference between rounds
for round in $(seq 1 "${ROUNDS:-2}"); do
  run "$BASE" base
  run "$HERE" new
  for label in base new; do
    echo "== round $round, $label"
    grep -v '^\s*$' "$OUT/$label/cuda-tick.log" | tail -8
    grep -v '^\s*$' "$OUT/$label/host-overhead.log" | tail -6
    cp "$OUT/$label/cuda-tick.log" "$OUT/$label/cuda-tick.round$round.log"
    cp "$OUT/$label/host-overhead.log" "$OUT/$label/host-overhead.round$round.log"
  done
done
exit $status
