#!/usr/bin/env bash
# `make readme-check`: runs every ```sh check block of README.md, in order, in one bash session
# (so `export` and variables carry from block to block), and fails on the first command that
# exits non-zero. The blocks run in a scratch folder that links the repository's fixtures/,
# .build/ and .cache/, so their outputs (out/...) never land in the checkout; `make` inside a
# block runs in the repository root. Blocks marked plain ```sh are shown, not run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
readme="$root/README.md"
work="$(mktemp -d "${TMPDIR:-/tmp}/steertool-readme-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT
for d in fixtures .build .cache; do
  [ -e "$root/$d" ] && ln -s "$root/$d" "$work/$d"
done

# One script: a header per block (its README line), then the block's lines as written.
awk -v q='"' '
  /^```sh check[[:space:]]*$/ { inside = 1; n++; printf "echo %sreadme-check: block %d (README.md line %d)%s >&2\n", q, n, NR, q; next }
  /^```/                      { inside = 0; next }
  inside                      { print }
' "$readme" > "$work/.readme-blocks.sh"
blocks="$(grep -c '^```sh check' "$readme" || true)"
[ "$blocks" -gt 0 ] || { echo "readme-check: no \`\`\`sh check blocks in README.md"; exit 1; }

cd "$work"
start=$SECONDS
if bash -c 'set -euo pipefail; make() { command make --no-print-directory -C "$0" "$@"; }; source ./.readme-blocks.sh' "$root"; then
  echo "readme-check: $blocks blocks passed in $((SECONDS - start)) s"
else
  rc=$?
  echo "readme-check: FAILED (exit $rc); the last block header above names the block"
  exit "$rc"
fi
