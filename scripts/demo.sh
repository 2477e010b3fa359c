#!/usr/bin/env bash
# demo.sh - the main job end to end: create a local repository, back up a
# small generated disk image and a directory, list the snapshots and what
# they hold, restore both and verify them.
#
# Usage: go build -o bunker ./cmd/bunker && ./scripts/demo.sh [WORKDIR]
set -euo pipefail

BUNKER=${BUNKER:-$(cd "$(dirname "$0")/.." && pwd)/bunker}
[ -x "$BUNKER" ] || { echo "demo.sh: build bunker first: go build -o bunker ./cmd/bunker" >&2; exit 1; }
WORK=${1:-$(mktemp -d -t bunker-demo.XXXXXX)}
mkdir -p "$WORK"
cd "$WORK"
rm -rf repo src restored disk.raw disk.vmdk restored.raw password

run() { printf '\n$ %s\n' "$*"; "$@"; }

export BUNKER_REPOSITORY="$WORK/repo"
printf 'demo password, change me\n' >password
chmod 600 password
export BUNKER_PASSWORD_FILE="$WORK/password"

# A directory with some text, a binary file, a symlink and a sparse file.
mkdir -p src/etc src/data
printf 'hello from bunker\n' >src/hello.txt
for i in $(seq 1 500); do printf 'line %04d\n' "$i"; done >src/etc/lines.conf
head -c $((2 * 1024 * 1024)) /dev/urandom >src/data/random.bin
truncate -s 8M src/data/sparse.img
ln -s ../hello.txt src/etc/hello-link

# A 64 MiB disk with an MBR partition table, an ext4 file system holding the
# directory in partition 1, 4 MiB of data in partition 2, and holes.
truncate -s 64M disk.raw
if command -v sfdisk >/dev/null 2>&1; then
  printf 'label: dos\nstart=2048, size=61440, type=83\nstart=63488, type=83\n' | sfdisk -q disk.raw
  if command -v mkfs.ext4 >/dev/null 2>&1; then
    mkfs.ext4 -q -F -L demo-root -d src -E offset=1048576 disk.raw 30M
  fi
fi
head -c $((4 * 1024 * 1024)) /dev/urandom | dd of=disk.raw bs=1M seek=40 conv=notrunc status=none
if command -v qemu-img >/dev/null 2>&1; then
  qemu-img convert -f raw -O vmdk disk.raw disk.vmdk
  DISK=disk.vmdk
else
  DISK=disk.raw
fi

run "$BUNKER" init
run "$BUNKER" backup --tag demo src
run "$BUNKER" backup --tag demo --disk "$DISK" --name vm1
run "$BUNKER" snapshots
run "$BUNKER" ls latest --tag demo
run "$BUNKER" volumes latest
if command -v mkfs.ext4 >/dev/null 2>&1 && command -v sfdisk >/dev/null 2>&1; then
  # files inside the disk's ext4 partition, read without mounting
  run "$BUNKER" ls -l latest disk:vm1:p1/etc
  run "$BUNKER" dump latest disk:vm1:p1/hello.txt
fi
run "$BUNKER" restore latest --disk vm1 --to restored.raw --verify
run "$BUNKER" restore latest --path "$WORK/src" --target restored --verify
run "$BUNKER" check --read-data
run "$BUNKER" stats

cmp disk.raw restored.raw && echo "disk restored byte for byte"
diff -r src "restored$WORK/src" && echo "files restored"
echo
echo "demo repository: $WORK/repo"
