# Puts Node 24 LTS first on PATH. Source it (`source tools/node24.sh`); .ci/run and tools/device-pack.sh do.
# The binary is the registry's node-linux-<arch> package of the pinned version, installed once into a cache
# folder; `npm` (a Node script) then runs on it too. LOOM_NODE_VERSION and LOOM_NODE_DIR override.
LOOM_NODE_VERSION=${LOOM_NODE_VERSION:-24.22.3}
case "$(uname -m)" in
  x86_64) loom_node_arch=x64 ;;
  aarch64 | arm64) loom_node_arch=arm64 ;;
  *) echo "tools/node24.sh: no Node package for $(uname -m)" >&2; return 1 2>/dev/null || exit 1 ;;
esac
LOOM_NODE_DIR=${LOOM_NODE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/loom-node/$LOOM_NODE_VERSION}
LOOM_NODE_BIN="$LOOM_NODE_DIR/node_modules/node-linux-$loom_node_arch/bin"
if [ ! -x "$LOOM_NODE_BIN/node" ]; then
  echo "installing Node $LOOM_NODE_VERSION (node-linux-$loom_node_arch) into $LOOM_NODE_DIR" >&2
  mkdir -p "$LOOM_NODE_DIR" &&
    npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix "$LOOM_NODE_DIR" \
      "node-linux-$loom_node_arch@$LOOM_NODE_VERSION" >&2 ||
    { echo "tools/node24.sh: could not install Node $LOOM_NODE_VERSION" >&2; return 1 2>/dev/null || exit 1; }
fi
export PATH="$LOOM_NODE_BIN:$PATH"
export LOOM_NODE_BIN
