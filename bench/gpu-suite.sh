#!/usr/bin/env bash
# Every GPU benchmark and the GPU tests of the issue-4/5/6 notes, on one CUDA machine, from a fresh clone
# (after `npm ci`, or on the lent GPU machine after `source .device/env.sh`):
#
#   bash bench/gpu-suite.sh OUT_DIR [PART ...]
#
# PARTs (default: all but serve and tenants, in this order):
#   build      tsc + the native addon with the CUDA backend
#   tests      vitest run test/gpu (CUDA vs CPU backend and onnxruntime, occupancy masks); swap.test.ts alone after;
#              then three rounds of four GPU files side by side (the upload race of stops 11-19)
#   tick       bench/cuda-tick.ts: captured-graph tick of the demo fleet and of 64 x MLP
#   host       bench/host-overhead.ts: runTick wall time minus the native tick
#   rows       bench/tick-rows.ts: a tick at 1, 2, 4, ... 64 rows per tenant (16 x MLP 1024-4096-4096-1024 at
#              maxBatch 64): the row-bucket GEMMs against the full tick
#   demo       loom demo + loom bench (time-only / space-only / space-time) + loom bench --occupancy
#   fleets     bench/fleet-table.ts: the issue-5 fleets and the zoo mix against Loom space-only (each tenant its
#              own plan, its own CUDA graph on its own stream, all launched at once) and the PyTorch peers (needs
#              python3 + torch), all at fp32; then PRECISION_FLEETS at each of PRECISIONS, peers at the same precision
#   spacetime  bench/space-time.ts: issue 13's device ticks, time-only / space-only / space-time with ST/SO and
#              ST/TO against the targets, for the demo fleet, the fleet table's fleets and the zoo mix (after
#              `fleets` it reuses their compiled plans)
#   occupancy  loom bench --occupancy on the fleet table's 64 x MLP plan (after `fleets`)
#   seed       bench/peers/seed_torch.py + bench/seed.ts: the seed study's table (fp32)
#   serve      bench/serve-load.ts: loom serve (CUDA backend) under closed- and open-loop load, HTTP JSON and
#              binary bodies and gRPC, with --intake-threads 0 (HTTP on the tick thread) and loom's default
#              (cores - 1), 4 client processes, against the fastify floor in the same run; then
#              bench/serve-intake.ts (the tick thread's cost per request) (SERVE_LOAD_ARGS adds/overrides flags)
#   calibrate  loom calibrate (the full grid) into OUT/device-profile.json, then bench/cost-model.ts: every bench
#              fleet's predicted tick against its measured one with that profile and with the default roofline
#              (issue 13 item 2: within ±25%). Not in the default list: a few minutes. Copy the profile to
#              profiles/<card>.json to ship it.
#   prefetch   bench/env-ab.ts: the skinny-GEMM weight prefetch before the programmatic-launch wait
#              (LOOM_CUDA_PDL=noprefetch / prefetch / prefetch with 4 steps / off) on 64 x MLP b1 and b16, 120 x LSTM
#              and the zoo mix, interleaved rounds in one process. Not in the default list: decides
#              kPdlPrefetchByDefault (native/src/backend_cuda_ctx.h).
#   tile       bench/env-ab.ts: Loom's tiled kernel as the load-time choice has it, off, and wherever it fits
#              (LOOM_CUDA_TILE=auto / off / force) on the zoo mix, 64 x MLP b16 and 32 x ResNet-18. Not in the default
#              list. (Stops 21-22's L2 warm-up, io graph and chained choice timing measured no gain on an H100 at stop 23
#              and were removed at stop 24, with their parts here.)
#   tenants    bench/tenant-scale.ts: 100 and 1,000 zoo MLPs and 10,000 small MLPs: compile, device tick vs the
#              weight-bytes floor, full and 10%-occupancy ticks, serve start-up, /metrics bytes, serve load
#              over 10% of the tenants; one 240 s budget (TENANT_SCALE_ARGS adds/overrides flags). Needs dist
#              and autocannon, as serve does. Not in the default list: about 5 minutes.
# Logs and JSON land in OUT_DIR (and bench/results/ for the programs that write there).
# FLEETS=mlp-b1,mlp-b16 (say) limits the fleet table; PRECISIONS=bf16,tf32 (default; PRECISIONS= for none) and
# PRECISION_FLEETS=mlp-b1,zoo-mix (default) choose its precision rows; SPACE_TIME_FLEETS limits `spacetime`
# (default: demo and every fleet) and SPACE_TIME_BRANCHING (default measure: batch or branch by timing both plans on the card, as `loom compile --branching measure`; auto: by the cost model; never: batched) plans them; FLEET_ITERS (200) and SPACE_TIME_TICKS (100) set their timed ticks; WORK=DIR
# keeps the compiled fleets between runs. The whole fleet table does not fit one 10-minute call: split it by
# FLEETS (BENCHMARKS.md, "Space-only, precision rows and the zoo mix", lists the calls).
set -uo pipefail
OUT=${1:?usage: bash bench/gpu-suite.sh OUT_DIR [PART ...]}
shift
PARTS=${*:-build tests tick host rows demo fleets spacetime occupancy seed}
WORK=${WORK:-/tmp/loom-gpu-suite}
FLEETS=${FLEETS:-mlp-b1,mlp-b16,lstm,resnet18,mixed,zoo-mix}
PRECISIONS=${PRECISIONS-bf16,tf32}
PRECISION_FLEETS=${PRECISION_FLEETS:-mlp-b1,zoo-mix}
SPACE_TIME_FLEETS=${SPACE_TIME_FLEETS:-demo,mlp-b1,mlp-b16,lstm,resnet18,mixed,zoo-mix}
FLEET_ITERS=${FLEET_ITERS:-200}
SPACE_TIME_BRANCHING=${SPACE_TIME_BRANCHING:-measure}
SPACE_TIME_TICKS=${SPACE_TIME_TICKS:-100}
mkdir -p "$OUT" "$WORK"
TSX="node --import tsx"
X=""; command -v npx >/dev/null && X="npx" # the lent GPU machine has node_modules/.bin on PATH but no npx
LOOM="node bin/loom.js"
status=0

step() { # name, command...: runs it with its output in OUT/name.log; a failure is recorded, the suite goes on
  local name=$1
  shift
  local t0=$SECONDS
  echo "== $name: $*"
  if "$@" >"$OUT/$name.log" 2>&1; then
    echo "   ok ($((SECONDS - t0)) s)"
  else
    echo "   FAILED ($((SECONDS - t0)) s): tail of $OUT/$name.log"
    tail -25 "$OUT/$name.log"
    status=1
  fi
}

ab() { # name, fleets, settings: bench/env-ab.ts's A/B of LOOM_CUDA_* settings on those fleets, its table echoed
  step "$1-ab" $TSX bench/env-ab.ts --fleets "$2" --work "$WORK/fleets" --rounds 5 --settings "$3"
  grep -A40 '^env A/B' "$OUT/$1-ab.log" || true
}

for part in $PARTS; do
  case $part in
    build)
      # TypeScript does not travel in the GPU kit (tools/device-pack.sh): there dist/ comes built, carried
      if command -v tsc >/dev/null || [ -n "$X" ]; then step build-ts $X tsc -p tsconfig.json; else echo "== build-ts: no tsc here, using the carried dist/"; fi
      step build-native $X cmake-js compile -d native --out native/build
      step doctor $LOOM doctor
      ;;
    tests)
      # swap.test.ts reads the device's free memory (cudaMemGetInfo): alone, so other files' plans do not move it
      step gpu-tests $X vitest run test/gpu --exclude test/gpu/swap.test.ts
      step gpu-tests-swap $X vitest run test/gpu/swap.test.ts
      # the load-time upload race (stops 11-19): four files side by side with the slower staged skinny kernel
      # failed 5 times of 5 with an illegal memory access before uploads went on the plan's own stream
      for round in 1 2 3; do
        step "gpu-race-$round" env LOOM_CUDA_GEMV_VEC=off $X vitest run test/gpu/cuda-fleet.test.ts test/gpu/pdl.test.ts \
          test/gpu/branches.test.ts test/gpu/cuda-precision.test.ts
      done
      ;;
    tick) step cuda-tick $TSX bench/cuda-tick.ts --iters 300 ;;
    host) step host-overhead $TSX bench/host-overhead.ts --backend cuda --iters 2000 ;;
    rows) step tick-rows $TSX bench/tick-rows.ts --backend cuda --iters 500 ;;
    demo)
      step demo $LOOM demo --dir "$WORK/demo" --backend cuda --quiet
      step bench-demo $LOOM bench "$WORK/demo/plan" --backend cuda --ticks 200 --warmup 20 --json "$OUT/bench-demo.json" --quiet
      step occupancy-demo $LOOM bench "$WORK/demo/plan" --backend cuda --occupancy 0.1,0.25,0.5,1 --ticks 200 --json "$OUT/occupancy-demo.json" --quiet
      ;;
    fleets)
      step fleet-table $TSX bench/fleet-table.ts --fleets "$FLEETS" --work "$WORK/fleets" --backend cuda --iters "$FLEET_ITERS" \
        --extra-precisions "$PRECISIONS" --extra-fleets "$PRECISION_FLEETS" --out "$OUT"
      ;;
    spacetime)
      step space-time $TSX bench/space-time.ts --fleets "$SPACE_TIME_FLEETS" --work "$WORK/fleets" --backend cuda --ticks "$SPACE_TIME_TICKS" --warmup 10 \
        --branching "$SPACE_TIME_BRANCHING" --out "$OUT"
      ;;
    occupancy)
      step occupancy-mlp64 $LOOM bench "$WORK/fleets/mlp-b1/plan" --backend cuda --occupancy 0.1,0.25,0.5,1 --ticks 300 --json "$OUT/occupancy-mlp64.json" --quiet
      ;;
    seed)
      step seed-torch python3 bench/peers/seed_torch.py --out "$OUT/seed-torch.json"
      step seed $TSX bench/seed.ts --backend cuda --precision fp32 --torch "$OUT/seed-torch.json" --out "$OUT/seed.json"
      ;;
    serve)
      # not in the default list: about 6 minutes (floor: 2 bodies x 4 phases; loom twice: 3 bodies x 4 phases; 8 s
      # each), the host's cores to itself; "80%" is an open loop at 80% of the body's closed-loop rate in the run
      # shellcheck disable=SC2086
      step serve-load env OUT="$OUT" $TSX bench/serve-load.ts --backend cuda --seconds 8 --tenants 16 --connections 64,256 --rates 5000,80% \
        --bodies json,binary,grpc --intake-threads 0,auto --client-procs 4 ${SERVE_LOAD_ARGS:-}
      step serve-intake $TSX bench/serve-intake.ts --seconds 3 --out "$OUT"
      ;;
    prefetch)
      ab prefetch mlp-b1,mlp-b16,lstm,zoo-mix 'LOOM_CUDA_PDL=noprefetch;LOOM_CUDA_PDL=prefetch;LOOM_CUDA_PDL=prefetch,LOOM_CUDA_PDL_PREFETCH=4;LOOM_CUDA_PDL=off'
      ;;
    tile)
      ab tile zoo-mix,mlp-b16,resnet18 'LOOM_CUDA_TILE=auto;LOOM_CUDA_TILE=off;LOOM_CUDA_TILE=force'
      ;;
    calibrate)
      step calibrate $LOOM calibrate --backend cuda --out "$OUT/device-profile.json"
      step cost-model $TSX bench/cost-model.ts --profile "$OUT/device-profile.json" --backend cuda --work "$WORK/cost-model" --out "$OUT"
      step cost-model-default $TSX bench/cost-model.ts --backend cuda --work "$WORK/cost-model" --out "$OUT/default-roofline"
      ;;
    tenants)
      # shellcheck disable=SC2086
      step tenant-scale env OUT="$OUT" $TSX bench/tenant-scale.ts --backend cuda --budget-s 240 ${TENANT_SCALE_ARGS:-}
      ;;
    *) echo "unknown part '$part' (build tests tick host rows demo fleets spacetime occupancy seed serve calibrate prefetch tile tenants)"; exit 2 ;;
  esac
done
exit $status
