#!/usr/bin/env bash
# examples/test-parallel.sh PROGRAM - examples/parallel as a person uses it:
#   1. hashes a directory of files of awkward sizes (empty, 1 byte, one
#      read exactly, several reads, a subdirectory, a name with a space)
#      and prints what sha256sum prints for them;
#   2. Ctrl-C while it hashes a big tree (/usr): it stops within seconds,
#      exits 130 and says how many files were hashed and cancelled, and
#      every line it printed is a correct digest.
set -euo pipefail
prog=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/d/sub dir"
: >"$work/d/empty"
printf x >"$work/d/one"
head -c 65536 /dev/urandom >"$work/d/exact"
head -c 1000003 /dev/urandom >"$work/d/sub dir/big"
for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom >"$work/d/sub dir/f$i"; done

(cd "$work" && "$prog" d >out.txt 2>err.txt)
(cd "$work" && find d -type f -print0 | sort -z | xargs -0 sha256sum >ref.txt)
diff "$work/out.txt" "$work/ref.txt"
grep -q "44 of 44 files hashed" "$work/err.txt"
echo "parallel: 44 files hashed, as sha256sum does"

# Ctrl-C on a big tree, once it is hashing (it says how many files it
# found when its walk is done).
"$prog" /usr >"$work/c.txt" 2>"$work/c.err" &
pid=$!
for _ in $(seq 1 600); do
	grep -q "files to hash" "$work/c.err" && break
	sleep 0.1
done
sleep 0.5
kill -INT "$pid"
start=$SECONDS
rc=0
wait "$pid" || rc=$?
if [ "$rc" -ne 130 ]; then
	echo "parallel: exit status $rc after Ctrl-C, not 130" >&2
	cat "$work/c.err" >&2
	exit 1
fi
if [ $((SECONDS - start)) -gt 10 ]; then
	echo "parallel: took $((SECONDS - start)) s to stop after Ctrl-C" >&2
	exit 1
fi
# Some were hashed, the rest cancelled (queued ones never ran).
grep -E "files hashed .* [1-9][0-9]* cancelled" "$work/c.err" >&2
# What it printed before stopping is right.
head -200 "$work/c.txt" | sha256sum --check --quiet
echo "parallel: Ctrl-C stopped it cleanly ($(wc -l <"$work/c.txt") files hashed)"
