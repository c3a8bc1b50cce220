#!/bin/sh
# clang-format over native/src and native/emu (style: .clang-format at the root; generated *.gen.* files are left as
# their generator writes them). `--check` fails on any difference (npm run lint), `--write` rewrites
# (npm run format). Without a clang-format binary it says so and succeeds, so TypeScript still lints.
set -eu
cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null 2>&1; then
  echo "clang-format not found: native/src formatting not checked (Debian/Ubuntu: apt-get install clang-format)"
  exit 0
fi
files=$(find native/src native/emu -maxdepth 1 -type f \( -name '*.cc' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.inc' \) ! -name '*.gen.*' | sort)
case "${1:-}" in
  --check) "$cf" --dry-run --Werror $files && echo "clang-format: $(echo "$files" | wc -l) files in native/src formatted" ;;
  --write) "$cf" -i $files ;;
  *) echo "usage: sh tools/clang-format.sh --check|--write" >&2; exit 2 ;;
esac
