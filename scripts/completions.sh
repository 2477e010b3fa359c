#!/usr/bin/env bash
# completions.sh - goreleaser before-hook: write shell completions and man
# pages of the bunker being released into completions/ and manpages/.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf completions manpages
mkdir -p completions manpages
go build -trimpath -o ./dist-bunker-host ./cmd/bunker
trap 'rm -f ./dist-bunker-host' EXIT
for sh in bash zsh fish; do
  ./dist-bunker-host completion "$sh" >"completions/bunker.$sh"
done
./dist-bunker-host generate --man manpages >/dev/null
gzip -9 -n -f manpages/*.1
