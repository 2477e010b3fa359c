#!/usr/bin/env bash
# bench.sh - benchmark bunker against restic on the same data, in the same run.
#
# Usage: scripts/bench/bench.sh [options]
#   -n N               runs per measurement (default 5); medians are reported
#   --only SET         files | disks | sparse | prune | gobench (repeatable; default: files, disks, sparse)
#   --prune-steps N    snapshots in the prune set's history (default 200; --quick: 40)
#   --quick            small data sets for a smoke run (100 MiB tree, 256 MiB file,
#                      512 MiB disk, 4 GiB sparse image holding 128 MiB)
#   --tools LIST       comma-separated tools to measure (default bunker,restic)
#   --bunker PATH      bunker binary to use (default: built from this checkout)
#   --cache warm|cold  warm (default): the source is read into the page cache before
#                      each measured command; cold: caches are dropped before each one
#                      (sync; echo 3 > /proc/sys/vm/drop_caches, needs root)
#   --sparse-restic-runs N   restic runs on the large sparse image (default 1: restic
#                      reads every hole, which takes minutes per run)
#   --nice N           run the measured commands at niceness N (e.g. -10 on a shared, busy
#                      machine; needs root for N < 0; default: not changed)
#   --gobench          also run the Go micro-benchmarks (after the other groups)
#   --gen-only         only generate the data sets
#   -h, --help
#
# Environment: BENCH_DIR (scratch directory, default /tmp/bunker-bench; data sets are
# generated once under it and reused), RESTIC (default restic).
#
# Results: BENCH_DIR/results/<UTC time>/{results.csv,results.md,logs/}; the Markdown
# table is also printed on stdout. See docs/benchmarks.md for what each row means.
set -euo pipefail

# The whole script is one function, called on the last line together with
# exit, so bash parses it completely before it runs: editing the file during
# a long benchmark cannot break the run.
main() {

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

RUNS=5
ONLY=()
QUICK=0
TOOLS=bunker,restic
BUNKER=
CACHE=warm
SPARSE_RESTIC_RUNS=1
GEN_ONLY=0
NICE=
GOBENCH=0
PRUNE_STEPS=
BENCH_DIR=${BENCH_DIR:-/tmp/bunker-bench}
RESTIC=${RESTIC:-restic}

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "bench: error: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    --only) ONLY+=("$2"); shift 2 ;;
    --quick) QUICK=1; shift ;;
    --tools) TOOLS=$2; shift 2 ;;
    --bunker) BUNKER=$2; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    --sparse-restic-runs) SPARSE_RESTIC_RUNS=$2; shift 2 ;;
    --gobench) GOBENCH=1; shift ;;
    --gen-only) GEN_ONLY=1; shift ;;
    --nice) NICE=$2; shift 2 ;;
    --prune-steps) PRUNE_STEPS=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "bench: unknown option $1" >&2; usage 2 ;;
  esac
done
[ ${#ONLY[@]} -gt 0 ] || ONLY=(files disks sparse)
[ "$GOBENCH" = 0 ] || ONLY+=(gobench)
for s in "${ONLY[@]}"; do
  case $s in files|disks|sparse|prune|gobench) ;; *) die "--only: unknown set $s" ;; esac
done
case $CACHE in warm|cold) ;; *) die "--cache must be warm or cold" ;; esac
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "-n must be a positive integer"
want() { local s; for s in "${ONLY[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
use_tool() { [[ ",$TOOLS," == *",$1,"* ]]; }

KiB=1024; MiB=$((1024 * KiB)); GiB=$((1024 * MiB))
if [ "$QUICK" = 1 ]; then
  DATA=$BENCH_DIR/data-quick
  TREE_SIZE=$((100 * MiB)); FILE_SIZE=$((256 * MiB)); DISK_SIZE=$((512 * MiB))
  DISK_TREE_LIMIT=$((200 * MiB)); SPARSE_VSIZE=$((4 * GiB)); SPARSE_DATA=$((128 * MiB)); SPARSE_EXTENTS=16
  PRUNE_STEPS=${PRUNE_STEPS:-40}
else
  DATA=$BENCH_DIR/data
  TREE_SIZE=$GiB; FILE_SIZE=$((4 * GiB)); DISK_SIZE=$((4 * GiB))
  DISK_TREE_LIMIT=0; SPARSE_VSIZE=$((100 * GiB)); SPARSE_DATA=$GiB; SPARSE_EXTENTS=64
  PRUNE_STEPS=${PRUNE_STEPS:-200}
fi
SEED=20261122
export TZ=UTC E2FSPROGS_FAKE_TIME=1767225600 SOURCE_DATE_EPOCH=1767225600

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found${2:+ ($2)}"; }
need go
[ -x /usr/bin/time ] || { log "installing GNU time"; apt-get install -y time >/dev/null 2>&1 || die "/usr/bin/time missing (apt-get install time)"; }

mkdir -p "$BENCH_DIR/bin" "$DATA"
BENCHTOOL=$BENCH_DIR/bin/benchtool
(cd "$REPO_ROOT" && CGO_ENABLED=0 go build -o "$BENCHTOOL" ./scripts/bench/benchtool) || die "build benchtool"

# ---------------------------------------------------------------------------
# Data sets. Each is built once; a .done marker next to it records the
# parameters it was built with, so a changed parameter rebuilds it.
# ---------------------------------------------------------------------------
done_ok() { [ -f "$1.done" ] && [ "$(cat "$1.done")" = "$2" ]; }

gen_tree() {
  local params="tree size=$TREE_SIZE seed=$SEED"
  done_ok "$DATA/tree" "$params" && return
  log "generating tree ($((TREE_SIZE / MiB)) MiB) in $DATA/tree"
  rm -rf "$DATA/tree"
  "$BENCHTOOL" tree -dir "$DATA/tree" -size "$TREE_SIZE" -seed "$SEED" >"$DATA/tree.json"
  echo "$params" >"$DATA/tree.done"
}

gen_file() {
  local params="file size=$FILE_SIZE seed=$SEED"
  done_ok "$DATA/file" "$params" && return
  log "generating single file ($((FILE_SIZE / MiB)) MiB)"
  mkdir -p "$DATA/file"
  "$BENCHTOOL" file -out "$DATA/file/big.bin" -size "$FILE_SIZE" -seed "$SEED"
  echo "$params" >"$DATA/file.done"
}

# The root filesystem tree for the disk image: a Debian bookworm debootstrap
# (minbase plus a kernel, systemd, python3, perl, gcc, git, ssh: about 1 GiB
# once the downloaded .debs are removed), or, without debootstrap or network,
# about 1 GiB of this machine's /usr.
ROOTFS=$BENCH_DIR/rootfs
DEBOOTSTRAP_INCLUDE=systemd,systemd-sysv,linux-image-amd64,python3,perl,openssh-server,vim-tiny,curl,ca-certificates,gcc,git,locales,iproute2
gen_rootfs() {
  [ -f "$ROOTFS.done" ] && return
  rm -rf "$ROOTFS"
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get install -y debootstrap >/dev/null 2>&1 || true
  fi
  if command -v debootstrap >/dev/null 2>&1; then
    log "debootstrap bookworm into $ROOTFS (needs the Debian mirror)"
    if debootstrap --variant=minbase --include="$DEBOOTSTRAP_INCLUDE" bookworm "$ROOTFS" \
         http://deb.debian.org/debian >"$BENCH_DIR/debootstrap.log" 2>&1; then
      rm -f "$ROOTFS"/var/cache/apt/archives/*.deb
      echo "debootstrap --variant=minbase --include=$DEBOOTSTRAP_INCLUDE bookworm" >"$ROOTFS.done"
      return
    fi
    log "debootstrap failed (see $BENCH_DIR/debootstrap.log); falling back to a copy of /usr"
  fi
  rm -rf "$ROOTFS"
  mkdir -p "$ROOTFS"
  copy_subset / "$ROOTFS" $((1 * GiB)) usr
  echo "copy of about 1 GiB of /usr of $(hostname)" >"$ROOTFS.done"
}

# copy_subset SRC DST LIMIT [SUBDIR...]: copy the regular files, symlinks and
# directories of SRC (or of its SUBDIRs) in sorted path order until LIMIT bytes
# of files are copied (LIMIT 0: everything).
copy_subset() {
  local src=$1 dst=$2 limit=$3; shift 3
  local dirs=("${@:-.}")
  (cd "$src" && find "${dirs[@]}" \( -type f -o -type l \) -printf '%s\t%p\n' | LC_ALL=C sort -t$'\t' -k2 |
    awk -F'\t' -v lim="$limit" 'full { next } lim > 0 && tot + $1 > lim { full = 1; next } { tot += $1; print $2 }' |
    tar -cf - --no-recursion -T - ) | tar -xf - -C "$dst"
}

# The disk: GPT with one Linux partition from 1 MiB to 1 MiB before the end,
# an ext4 filesystem made from the root tree by mkfs.ext4 -d (no root, no mount
# needed), fixed UUIDs and timestamps.
PART_START=$MiB
gen_disk() {
  gen_rootfs
  local params="disk size=$DISK_SIZE tree-limit=$DISK_TREE_LIMIT rootfs=$(cat "$ROOTFS.done") seed=$SEED"
  done_ok "$DATA/disk" "$params" && return
  local d=$DATA/disk tree=$ROOTFS
  rm -rf "$d"; mkdir -p "$d"
  if [ "$DISK_TREE_LIMIT" != 0 ]; then
    tree=$d/tree; mkdir -p "$tree"
    copy_subset "$ROOTFS" "$tree" "$DISK_TREE_LIMIT"
  fi
  local part_size=$((DISK_SIZE - 2 * MiB))
  log "building $((DISK_SIZE / MiB)) MiB ext4 disk from $tree"
  truncate -s "$DISK_SIZE" "$d/v1.raw"
  sfdisk -q "$d/v1.raw" <<EOF
label: gpt
label-id: 6A4B1E52-6F1B-4C8E-9D6B-2B0E5D1B7A10
first-lba: 2048
start=2048, size=$((part_size / 512)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=3F0C2D4E-8A51-4B7A-9C2E-5D6F7A8B9C0D, name="rootfs"
EOF
  mkfs.ext4 -q -F -L rootfs -U 8c1f0a3e-2b4d-4e6f-8a9b-0c1d2e3f4a5b -E root_owner=0:0,hash_seed=5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d \
    -d "$tree" "$d/part.img" $((part_size / KiB))k >/dev/null
  dumpe2fs -h "$d/part.img" 2>/dev/null | grep -E '^(Block count|Free blocks|Block size|Inode count|Free inodes):' >"$d/fs.txt"
  dd if="$d/part.img" of="$d/v1.raw" bs=4M seek=$PART_START oflag=seek_bytes conv=sparse,notrunc status=none
  rm -f "$d/part.img"
  [ "$tree" = "$ROOTFS" ] || rm -rf "$tree"
  log "converting to VMDK (monolithicSparse) and VHD (dynamic)"
  qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$d/v1.raw" "$d/v1.vmdk"
  qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$d/v1.raw" "$d/v1.vhd"
  qemu-img compare -q -f raw -F vmdk "$d/v1.raw" "$d/v1.vmdk" || die "VMDK differs from raw"
  qemu-img compare -q -f raw -F vpc "$d/v1.raw" "$d/v1.vhd" || die "VHD differs from raw"
  log "making the 2% changed version"
  cp --sparse=always "$d/v1.raw" "$d/v2.raw"
  "$BENCHTOOL" mutate -file "$d/v2.raw" -frac 0.02 -start $PART_START -end $((PART_START + part_size)) \
    -seed "$SEED" >"$d/mutate.json"
  touch -d @1767225600 "$d"/v1.* "$d/v2.raw"
  echo "$params" >"$DATA/disk.done"
}

# The disk as qcow2 and VHDX as well, converted from v1.raw. Made apart from
# gen_disk (with its own marker inside the disk directory, which a rebuild of
# the disk removes) so that adding them leaves the existing files alone.
gen_disk_formats() {
  local d=$DATA/disk f
  local params="disk-formats qcow2=-O qcow2 vhdx=-O vhdx -o subformat=dynamic source=v1.raw"
  done_ok "$d/formats" "$params" && [ -f "$d/v1.qcow2" ] && [ -f "$d/v1.vhdx" ] && return
  log "converting the disk to qcow2 and VHDX (dynamic)"
  rm -f "$d/v1.qcow2" "$d/v1.vhdx" "$d"/*.tmp
  qemu-img convert -f raw -O qcow2 "$d/v1.raw" "$d/v1.qcow2.tmp"
  qemu-img convert -f raw -O vhdx -o subformat=dynamic "$d/v1.raw" "$d/v1.vhdx.tmp"
  qemu-img compare -q -f raw -F qcow2 "$d/v1.raw" "$d/v1.qcow2.tmp" || die "qcow2 differs from raw"
  qemu-img compare -q -f raw -F vhdx "$d/v1.raw" "$d/v1.vhdx.tmp" || die "VHDX differs from raw"
  for f in qcow2 vhdx; do
    touch -d @1767225600 "$d/v1.$f.tmp"
    mv "$d/v1.$f.tmp" "$d/v1.$f"
  done
  echo "$params" >"$d/formats.done"
}

gen_sparse() {
  local params="sparse vsize=$SPARSE_VSIZE data=$SPARSE_DATA extents=$SPARSE_EXTENTS seed=$SEED"
  done_ok "$DATA/sparse" "$params" && return
  log "generating $((SPARSE_VSIZE / GiB)) GiB sparse image with $((SPARSE_DATA / MiB)) MiB of data"
  rm -rf "$DATA/sparse"; mkdir -p "$DATA/sparse"
  "$BENCHTOOL" sparse -big "$DATA/sparse/sparse.raw" -small "$DATA/sparse/dense.raw" \
    -vsize "$SPARSE_VSIZE" -data "$SPARSE_DATA" -extents "$SPARSE_EXTENTS" -seed "$SEED" >"$DATA/sparse/layout.json"
  echo "$params" >"$DATA/sparse.done"
}

want files && { gen_tree; gen_file; }
want disks && { gen_disk; gen_disk_formats; }
want sparse && gen_sparse
if [ "$GEN_ONLY" = 1 ]; then log "data sets ready in $DATA"; exit 0; fi

# ---------------------------------------------------------------------------
# Tools.
# ---------------------------------------------------------------------------
if use_tool bunker && { want files || want disks || want sparse; }; then
  if [ -z "$BUNKER" ]; then
    BUNKER=$BENCH_DIR/bin/bunker
    (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -o "$BUNKER" ./cmd/bunker) ||
      die "cannot build bunker (use --tools restic to measure restic alone)"
  fi
  [ -x "$BUNKER" ] || die "bunker binary $BUNKER not found"
fi
if use_tool restic; then need "$RESTIC"; fi
export BUNKER_PASSWORD=bench-password RESTIC_PASSWORD=bench-password
unset BUNKER_REPOSITORY RESTIC_REPOSITORY BUNKER_PASSWORD_FILE RESTIC_PASSWORD_FILE BUNKER_PASSWORD_COMMAND 2>/dev/null || true

RES=$BENCH_DIR/results/$(date -u +%Y%m%dT%H%M%SZ)
[ "$QUICK" = 0 ] || RES=$RES-quick
mkdir -p "$RES/logs"
CSV=$RES/results.csv
echo "dataset,measure,tool,run,wall_s,cpu_s,peak_rss_kib,bytes,guest_bytes,load1,status" >"$CSV"
WORK=$BENCH_DIR/work
CACHE_ROOT=$BENCH_DIR/cache

# Cache state. Dropping caches needs root and may be refused in a container.
DROP_OK=0
if [ "$CACHE" = cold ]; then
  if sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then DROP_OK=1; else
    die "--cache cold: cannot write /proc/sys/vm/drop_caches (not root, or refused in this container)"; fi
fi

# prepare SRC...: bring the page cache into the documented state before a measured command.
prepare() {
  sync
  if [ "$CACHE" = cold ]; then echo 3 >/proc/sys/vm/drop_caches
  elif [ $# -gt 0 ]; then "$BENCHTOOL" warm "$@"; fi
}

# run_tool TOOL REPO ARGS...: run bunker or restic on REPO with a private cache directory.
run_tool() {
  local tool=$1 repo=$2; shift 2
  case $tool in
    bunker) BUNKER_CACHE_DIR=$CACHE_ROOT/bunker "$BUNKER" -r "$repo" "$@" ;;
    restic) RESTIC_CACHE_DIR=$CACHE_ROOT/restic "$RESTIC" -r "$repo" "$@" ;;
  esac
}

# measure NAME TOOL REPO ARGS...: run the tool once under /usr/bin/time; sets
# WALL (s), CPU (user+system s), RSS (peak resident set, KiB), LOAD (1-minute
# load average at the end), STATUS (ok or rc=N) and OUT (the file holding its stdout).
measure() {
  local name=$1 tool=$2 repo=$3; shift 3
  OUT=$RES/logs/$name.out
  local err=$RES/logs/$name.err tf=$RES/logs/$name.time t0 t1 rc=0 cmd
  case $tool in
    bunker) cmd=(env BUNKER_CACHE_DIR="$CACHE_ROOT/bunker" "$BUNKER" -r "$repo" "$@") ;;
    restic) cmd=(env RESTIC_CACHE_DIR="$CACHE_ROOT/restic" "$RESTIC" -r "$repo" "$@") ;;
  esac
  [ -z "$NICE" ] || cmd=(nice -n "$NICE" "${cmd[@]}")
  echo "${cmd[*]}" >"$RES/logs/$name.cmd"
  t0=$(date +%s%N)
  /usr/bin/time -f '%e %M %U %S' -o "$tf" "${cmd[@]}" >"$OUT" 2>"$err" || rc=$?
  t1=$(date +%s%N)
  WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  RSS=$(awk 'END { print $2 }' "$tf" 2>/dev/null || echo "")
  CPU=$(awk 'END { printf "%.2f", $3 + $4 }' "$tf" 2>/dev/null || echo "")
  LOAD=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$rc" = 0 ]; then STATUS=ok; else
    STATUS=rc=$rc; log "  FAILED ($STATUS): ${cmd[*]} (see $err)"; tail -3 "$err" >&2 || true; fi
}

# record DATASET MEASURE TOOL RUN BYTES GUEST: append the last measurement to the CSV.
record() {
  echo "$1,$2,$3,$4,$WALL,$CPU,$RSS,$5,$6,$LOAD,$STATUS" >>"$CSV"
  log "  $1 / $2 / $3 run $4: ${WALL}s cpu=${CPU}s rss=${RSS}KiB bytes=$5 load=$LOAD $STATUS"
}

repo_bytes() { du -sb "$1" 2>/dev/null | awk '{ print $1 }'; }
apparent() { stat -c %s "$1"; }

# snapshot_id FILE: the snapshot id from a --json summary line on stdout.
snapshot_id() { grep -h '"summary"' "$1" | tail -1 | jq -r '.snapshot_id // .snapshot // .id // empty' 2>/dev/null || true; }

# written_bytes OUT DIR: bytes written by a disk restore: bytes_written of a
# --json summary on OUT if there is one, else the bytes allocated under DIR.
written_bytes() {
  local b
  b=$(grep -h '"summary"' "$1" 2>/dev/null | tail -1 | jq -r '.bytes_written // empty' 2>/dev/null || true)
  if [ -n "$b" ]; then echo "$b"; elif [ -n "$2" ]; then du -s -B1 "$2" | awk '{ print $1 }'; fi
}

fresh_repo() {
  local tool=$1 repo=$2
  rm -rf "$repo" "$CACHE_ROOT"; mkdir -p "$(dirname "$repo")"
  run_tool "$tool" "$repo" init >"$RES/logs/init-$tool.log" 2>&1 || die "$tool init failed: $(tail -3 "$RES/logs/init-$tool.log")"
}

rm -rf "$WORK"; mkdir -p "$WORK"

# ---------------------------------------------------------------------------
# Files: the tree and the single large file.
# ---------------------------------------------------------------------------
bench_files() {
  local set=$1 src=$2 guest run tool repo before
  guest=$(du -sb --apparent-size "$src" | awk '{ print $1 }')
  for run in $(seq 1 "$RUNS"); do
    for tool in ${TOOLS//,/ }; do
      repo=$WORK/repo-$tool
      fresh_repo "$tool" "$repo"
      prepare "$src"
      measure "$set-backup1-$tool-$run" "$tool" "$repo" backup --json "$src"
      record "$set" "first backup" "$tool" "$run" "$(repo_bytes "$repo")" "$guest"
      before=$(repo_bytes "$repo")
      prepare "$src"
      measure "$set-backup2-$tool-$run" "$tool" "$repo" backup --json "$src"
      record "$set" "no-change re-backup" "$tool" "$run" $(($(repo_bytes "$repo") - before)) "$guest"
      rm -rf "$WORK/restore"; mkdir -p "$WORK/restore"
      prepare "$repo"
      measure "$set-restore-$tool-$run" "$tool" "$repo" restore latest --target "$WORK/restore"
      record "$set" "restore" "$tool" "$run" "" "$guest"
      if [ "$run" = 1 ] && [ "$STATUS" = ok ]; then
        if diff -r -q "$src" "$WORK/restore$src" >"$RES/logs/$set-verify-$tool.txt" 2>&1; then
          log "  restored $set matches the source ($tool)"
        else
          log "  WARNING: restored $set differs from the source ($tool): $RES/logs/$set-verify-$tool.txt"
        fi
      fi
      rm -rf "$WORK/restore" "$repo"
    done
  done
}

# ---------------------------------------------------------------------------
# Disks. The source path stays the same (a hard link is switched from v1 to
# v2), as for a VM disk that changes between two backups.
# ---------------------------------------------------------------------------
bench_disks() {
  local d=$DATA/disk run tool repo before snap1 guest
  local src=$WORK/vm/disk.raw
  guest=$(apparent "$d/v1.raw")
  mkdir -p "$WORK/vm"
  for run in $(seq 1 "$RUNS"); do
    for tool in ${TOOLS//,/ }; do
      repo=$WORK/repo-$tool
      fresh_repo "$tool" "$repo"
      ln -f "$d/v1.raw" "$src"
      local bargs=(backup --json)
      [ "$tool" = bunker ] && bargs+=(--disk)
      prepare "$src"
      measure "disk-raw-$tool-$run" "$tool" "$repo" "${bargs[@]}" "$src"
      record disk "first backup raw" "$tool" "$run" "$(repo_bytes "$repo")" "$guest"
      snap1=$(snapshot_id "$OUT")
      for fmt in vmdk vhd qcow2 vhdx; do
        ln -f "$d/v1.$fmt" "$WORK/vm/disk.$fmt"
        before=$(repo_bytes "$repo")
        prepare "$WORK/vm/disk.$fmt"
        measure "disk-$fmt-$tool-$run" "$tool" "$repo" "${bargs[@]}" "$WORK/vm/disk.$fmt"
        record disk "$fmt after raw" "$tool" "$run" $(($(repo_bytes "$repo") - before)) "$guest"
        rm -f "$WORK/vm/disk.$fmt"
      done
      ln -f "$d/v2.raw" "$src"
      before=$(repo_bytes "$repo")
      prepare "$src"
      measure "disk-changed-$tool-$run" "$tool" "$repo" "${bargs[@]}" "$src"
      record disk "backup of 2% changed" "$tool" "$run" $(($(repo_bytes "$repo") - before)) "$guest"

      rm -rf "$WORK/restore"; mkdir -p "$WORK/restore"
      prepare "$repo"
      local out
      if [ "$tool" = bunker ]; then
        out=$WORK/restore/disk.raw
        measure "disk-restore-$tool-$run" bunker "$repo" restore "${snap1:-latest}" --disk disk.raw --to "$out" --json
      else
        out=$WORK/restore$src
        measure "disk-restore-$tool-$run" restic "$repo" restore "${snap1:-latest}" --target "$WORK/restore"
      fi
      record disk "full restore" "$tool" "$run" "$(written_bytes "$OUT" "$WORK/restore")" "$guest"
      if [ "$run" = 1 ] && [ "$STATUS" = ok ]; then
        if cmp -s "$d/v1.raw" "$out"; then log "  restored disk matches v1 ($tool)"; else log "  WARNING: restored disk differs from v1 ($tool)"; fi
      fi
      rm -rf "$WORK/restore"

      # bunker alone: the first snapshot's disk restored into VMDK and VHD,
      # each checked against v1.raw by qemu-img (a mismatch ends the run).
      if [ "$tool" = bunker ]; then
        for fmt in vmdk vhd; do
          mkdir -p "$WORK/restore"
          out=$WORK/restore/disk.$fmt
          prepare "$repo"
          measure "disk-restore-$fmt-$tool-$run" bunker "$repo" restore "${snap1:-latest}" --disk disk.raw --to "$out" --format "$fmt" --json
          record disk "restore to $fmt" "$tool" "$run" "$(written_bytes "$OUT" "$WORK/restore")" "$guest"
          [ "$STATUS" = ok ] || die "restore of the disk to $fmt failed ($STATUS): see $RES/logs/disk-restore-$fmt-$tool-$run.err"
          local qfmt=$fmt
          [ "$fmt" = vhd ] && qfmt=vpc
          if qemu-img compare -q -f "$qfmt" -F raw "$out" "$d/v1.raw" 2>"$RES/logs/disk-restore-$fmt-compare-$run.txt"; then
            log "  restored $fmt image matches v1 (qemu-img compare); file $(apparent "$out") bytes, $(du -B1 "$out" | awk '{ print $1 }') allocated"
          else
            die "restored $fmt image $out differs from v1.raw (qemu-img compare; see $RES/logs/disk-restore-$fmt-compare-$run.txt)"
          fi
          rm -rf "$WORK/restore"
        done
      fi

      if [ "$tool" = bunker ]; then
        mkdir -p "$WORK/restore"
        cp --sparse=always "$d/v2.raw" "$WORK/restore/disk.raw"
        prepare "$repo" "$WORK/restore/disk.raw"
        measure "disk-delta-$tool-$run" bunker "$repo" restore "${snap1:-latest}" --disk disk.raw --to "$WORK/restore/disk.raw" --delta --json
        record disk "delta restore of 2% change" "$tool" "$run" "$(written_bytes "$OUT" "")" "$guest"
        if [ "$run" = 1 ] && [ "$STATUS" = ok ]; then
          if cmp -s "$d/v1.raw" "$WORK/restore/disk.raw"; then log "  delta-restored disk matches v1"; else log "  WARNING: delta-restored disk differs from v1"; fi
        fi
        rm -rf "$WORK/restore"
      fi
      rm -f "$src"; rm -rf "$repo"
    done
  done
}

# ---------------------------------------------------------------------------
# Sparse: a large sparse image against a small one holding the same data.
# ---------------------------------------------------------------------------
bench_sparse() {
  local s=$DATA/sparse run tool repo img guest label runs
  for run in $(seq 1 "$RUNS"); do
    for tool in ${TOOLS//,/ }; do
      for img in dense sparse; do
        runs=$RUNS
        [ "$tool" = restic ] && [ "$img" = sparse ] && runs=$SPARSE_RESTIC_RUNS
        [ "$run" -le "$runs" ] || continue
        repo=$WORK/repo-$tool
        fresh_repo "$tool" "$repo"
        guest=$(apparent "$s/$img.raw")
        label="backup $((guest / MiB)) MiB $img"
        [ "$guest" -ge "$GiB" ] && label="backup $((guest / GiB)) GiB $img"
        local bargs=(backup --json)
        [ "$tool" = bunker ] && bargs+=(--disk)
        prepare "$s/$img.raw"
        measure "sparse-$img-$tool-$run" "$tool" "$repo" "${bargs[@]}" "$s/$img.raw"
        record sparse "$label" "$tool" "$run" "$(repo_bytes "$repo")" "$guest"
        rm -rf "$repo"
      done
    done
  done
}

# ---------------------------------------------------------------------------
# Prune: a history of PRUNE_STEPS snapshots of a 100 MiB directory (each step
# rewrites 5 MiB, two files of it held by that snapshot alone; about 20 GiB
# logical at 200 steps), made once per tool with --time one hour apart. Each
# run copies the history, forgets every other snapshot by id, drops the page
# cache when allowed, and measures prune.
# ---------------------------------------------------------------------------
gen_prune_history() {
  local tool=$1 hist=$DATA/prune-$tool src=$DATA/prune-src step t params
  params="prune tool=$tool steps=$PRUNE_STEPS seed=$SEED"
  done_ok "$hist" "$params" && return
  log "generating the prune history for $tool ($PRUNE_STEPS snapshots) in $hist"
  rm -rf "$hist" "$src" "$CACHE_ROOT"
  run_tool "$tool" "$hist" init >/dev/null 2>&1 || die "$tool init failed"
  for step in $(seq 0 $((PRUNE_STEPS - 1))); do
    "$BENCHTOOL" step -dir "$src" -step "$step" -seed "$SEED"
    t=$(date -u -d "@$((1767225600 + step * 3600))" '+%Y-%m-%d %H:%M:%S')
    (cd "$src" && run_tool "$tool" "$hist" backup -q --host bench --time "$t" .) >/dev/null ||
      die "$tool backup of prune step $step failed"
  done
  rm -rf "$src"
  echo "$params" >"$hist.done"
}

bench_prune() {
  local tool run repo ids before
  for tool in ${TOOLS//,/ }; do gen_prune_history "$tool"; done
  for run in $(seq 1 "$RUNS"); do
    for tool in ${TOOLS//,/ }; do
      repo=$WORK/prune-$tool
      rm -rf "$repo" "$CACHE_ROOT"; cp -a "$DATA/prune-$tool" "$repo"
      ids=$(run_tool "$tool" "$repo" snapshots --json | jq -r 'sort_by(.time) | .[range(0; length; 2)].id')
      # shellcheck disable=SC2086
      run_tool "$tool" "$repo" forget -q $ids >/dev/null || die "$tool forget failed"
      before=$(repo_bytes "$repo")
      sync; [ "$(id -u)" != 0 ] || echo 3 >/proc/sys/vm/drop_caches
      measure "prune-$tool-$run" "$tool" "$repo" prune
      record prune "prune $((PRUNE_STEPS / 2)) of $PRUNE_STEPS snapshots" "$tool" "$run" "$(repo_bytes "$repo")" "$before"
      if [ "$run" = 1 ]; then
        run_tool "$tool" "$repo" check >"$RES/logs/prune-check-$tool.log" 2>&1 || die "$tool check after prune failed"
      fi
      rm -rf "$repo"
    done
  done
}

describe_machine() {
  {
    echo "## Machine"
    echo
    echo "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "- RAM: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- Disk holding $BENCH_DIR: $(df -hT "$BENCH_DIR" | awk 'NR == 2 { print $1 ", " $2 ", " $3 " total" }')"
    echo "- Kernel: $(uname -r); $(go version | cut -d' ' -f3-4); $("$RESTIC" version 2>/dev/null | cut -d' ' -f1-2)"
    if use_tool bunker && [ -n "$BUNKER" ]; then echo "- bunker: $("$BUNKER" version 2>/dev/null | head -1) ($(cd "$REPO_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'), working tree as built)"; fi
    echo "- Page cache: $CACHE$([ "$CACHE" = cold ] && echo " (drop_caches before each measured command)" || echo " (source read into the page cache before each measured command)")"
    echo "- Runs per measurement: $RUNS (median shown)$([ "$QUICK" = 0 ] || echo "; QUICK data sets")"
    [ -z "$NICE" ] || echo "- Measured commands run at niceness $NICE"
    echo "- Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
  } >>"$RES/results.md"
}

: >"$RES/results.md"
describe_machine
log "results in $RES"
want files && { log "files: tree"; bench_files tree "$DATA/tree"; log "files: single file"; bench_files file "$DATA/file"; }
want disks && { log "disks"; bench_disks; }
want sparse && { log "sparse"; bench_sparse; }
want prune && { log "prune"; bench_prune; }
rm -rf "$WORK" "$CACHE_ROOT"

if want files || want disks || want sparse || want prune; then
  {
    echo "## Results"
    echo
    "$BENCHTOOL" report -csv "$CSV"
    echo
    echo "Times are median wall seconds (CPU = user + system seconds); speed-up = restic wall time / bunker wall time;"
    echo "MiB/s = source (guest) bytes / wall time; load = median 1-minute load average after the command;"
    echo "stored MiB = repository size after a first backup, repository growth after a later backup,"
    echo "bytes written to the target by a disk restore (bunker: bytes_written of its --json summary; restic: bytes"
    echo "allocated by the restored file)."
  } >>"$RES/results.md"
fi

if want gobench; then
  log "Go micro-benchmarks"
  {
    echo
    echo "## Go micro-benchmarks"
    echo
    echo '```'
  } >>"$RES/results.md"
  for pkg in ./chunk ./repo ./backup ./restore; do
    (cd "$REPO_ROOT" && go test -run xxx -bench . -benchtime 3x "$pkg" 2>&1) | tee -a "$RES/gobench.txt" >>"$RES/results.md" ||
      log "  go test -bench $pkg failed"
  done
  echo '```' >>"$RES/results.md"
fi

cat "$RES/results.md"
log "raw results: $CSV"
}

main "$@"; exit
