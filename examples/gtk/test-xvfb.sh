#!/usr/bin/env bash
# examples/gtk/test-xvfb.sh [--valgrind] [BUILD_DIR] - build gtk_progress
# and check it on a virtual X screen, as GTK's own CI runs its tests (Xvfb,
# the cairo renderer, no accessibility bus).
#
#   bash examples/gtk/test-xvfb.sh            # build dir build-gtk
#   bash examples/gtk/test-xvfb.sh build-x    # another one
#   bash examples/gtk/test-xvfb.sh --valgrind # the same under valgrind
#                                             # (smaller counts, 25-60 s)
# A relative BUILD_DIR is taken from the top of the repository.
#
# Installs what is missing (scripts/need), configures with warnings as
# errors (a new build dir without the tests) and builds the app (log in
# BUILD_DIR/gtk-test/build.log, shown only on failure), then runs
# `gtk_progress --selftest` and talks to it:
#   READY <tag> percent=P fraction=F png=PATH ...  the app has painted the
#       bar at P% and saved the window, rendered in-process, to PATH; it
#       waits for a line on stdin. We take a shot of the whole X screen
#       (import -window root), then answer.
#   FLOOD ... ticks_per_s=R   frames drawn per second while the worker
#       flooded the main thread with 10^6 progress events (at least one of
#       them must have found events waiting, or there was no flood).
#   PASS / FAIL: ...          the app's own verdict (and its exit code).
# Every shot is checked by its pixels: the bar is red (#FF0000) up to the
# progress and blue (#0000FF) after it, so red / (red + blue) must be the
# fraction the app reports, within 10 points. The tick rate must be at
# least 10/s. Exit 0 when all holds, 1 with a message saying what did not.
# The shots stay in BUILD_DIR/gtk-test/.
#
# --valgrind: memcheck with --errors-for-leak-kinds=definite and
# examples/gtk/valgrind.supp (fontconfig's own allocations only); any
# error or definite leak fails (the report is BUILD_DIR/gtk-test/valgrind.log).
set -euo pipefail
cd "$(dirname "$0")/../.."

use_valgrind=0
if [ "${1:-}" = --valgrind ]; then
	use_valgrind=1
	shift
fi
build=${1:-build-gtk}
out="$build/gtk-test"
tolerance=0.10      # fraction of the bar
min_bar_px=2000     # red + blue pixels: the bar is on the picture
min_tick_rate=10
run_timeout=100     # seconds for the app, whole

extra=()
[ $use_valgrind = 1 ] && extra=(valgrind)
bash scripts/need cmake gcc make pkg-config libgtk-4-dev xvfb xauth dbus-daemon \
	imagemagick x11-apps "${extra[@]}"

mkdir -p "$out"
rm -f "$out"/*.png "$out"/app.* 2>/dev/null || true
log="$out/build.log"
start_s=$SECONDS

fail() {
	echo "test-xvfb: FAIL: $*" >&2
	exit 1
}

show_app_logs() {
	echo "--- app stdout ($out/app.out):" >&2
	tail -n 30 "$out/app.out" >&2 || true
	echo "--- app stderr ($out/app.err):" >&2
	tail -n 30 "$out/app.err" >&2 || true
}

# ---- build ------------------------------------------------------------
# A new build dir gets no tests (no cmocka needed); an existing one keeps
# its settings, warnings as errors aside.
cfg=(-DRELAY_WERROR=ON)
[ -f "$build/CMakeCache.txt" ] || cfg+=(-DRELAY_BUILD_TESTS=OFF)
if ! { cmake -S . -B "$build" "${cfg[@]}" &&
       cmake --build "$build" -j "$(nproc)" --target gtk_progress; } >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	fail "the build failed (whole log: $log)"
fi
app="$build/examples/gtk/gtk_progress"
if [ ! -x "$app" ]; then
	grep -i "examples/gtk" "$log" >&2 || true
	fail "$app was not built (is relay-glib built? log: $log)"
fi

# ---- pixels -----------------------------------------------------------
# "red blue" pixel counts of an image.
count_bar() {
	convert "$1" -alpha off -format %c histogram:info:- |
		awk '/ #FF0000 / { sub(":", "", $1); r = $1 }
		     / #0000FF / { sub(":", "", $1); b = $1 }
		     END { printf "%d %d\n", r, b }'
}

# check_shot IMAGE EXPECTED_FRACTION WHAT: sets shot_pct, fails if off.
check_shot() {
	local img=$1 want=$2 what=$3 red blue
	[ -s "$img" ] || fail "$what: no picture ($img)"
	read -r red blue < <(count_bar "$img")
	if [ $((red + blue)) -lt $min_bar_px ]; then
		fail "$what: the bar is not on the picture ($red red, $blue blue pixels in $img)"
	fi
	shot_pct=$(awk -v r="$red" -v b="$blue" 'BEGIN { printf "%.1f", 100 * r / (r + b) }')
	if ! awk -v r="$red" -v b="$blue" -v w="$want" -v t="$tolerance" \
		'BEGIN { d = r / (r + b) - w; exit !(d <= t && d >= -t) }'; then
		fail "$what: the bar is $shot_pct% red ($red red, $blue blue pixels in $img)," \
			"the app says $(awk -v w="$want" 'BEGIN { printf "%.1f", 100 * w }')%"
	fi
}

# ---- run --------------------------------------------------------------
wrap=() app_args=()
if [ $use_valgrind = 1 ]; then
	# GL off: Mesa's loader adds reports of its own; cairo draws anyway.
	wrap=(env GDK_DEBUG=gl-disable G_SLICE=always-malloc
	      valgrind --quiet --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite
	      --suppressions="$PWD/examples/gtk/valgrind.supp" --error-exitcode=99
	      --num-callers=30 --log-file="$out/valgrind.log")
	app_args=(--flood 20000 2000000)
	run_timeout=300
fi
# The app's stdout comes to us line by line; we answer on its stdin.
coproc APP {
	exec timeout -k 5 "$run_timeout" dbus-run-session -- \
		xvfb-run -a -s "-screen 0 1024x768x24 -noreset" \
		env GDK_BACKEND=x11 GSK_RENDERER=cairo GTK_A11Y=none NO_AT_BRIDGE=1 \
		"${wrap[@]}" "$app" --selftest "$out" "${app_args[@]}" 2>"$out/app.err"
}
app_pid=$APP_PID
# A check that fails while the app runs ends it too (timeout passes the
# signal on to the app).
trap 'kill "$app_pid" 2>/dev/null || true' EXIT
exec {from_app}<&"${APP[0]}" {to_app}>&"${APP[1]}"

display= xauth= flood_line= verdict= close_at=
declare -a summary=()
: >"$out/app.out"
while IFS= read -r -t "$run_timeout" -u "$from_app" line; do
	printf '%s\n' "$line" >>"$out/app.out"
	case $line in
	"ENV "*)
		display=$(sed -n 's/.*DISPLAY=\([^ ]*\).*/\1/p' <<<"$line")
		xauth=$(sed -n 's/.*XAUTHORITY=\([^ ]*\).*/\1/p' <<<"$line")
		;;
	"READY "*)
		tag=$(awk '{ print $2 }' <<<"$line")
		fraction=$(sed -n 's/.* fraction=\([0-9.]*\).*/\1/p' <<<"$line")
		percent=$(sed -n 's/.* percent=\([0-9-]*\).*/\1/p' <<<"$line")
		label=$(sed -n 's/.* label="\(.*\)"$/\1/p' <<<"$line")
		# The app waits while we look at the X screen.
		root="$out/x11-$tag.png"
		if ! DISPLAY=$display XAUTHORITY=$xauth import -window root "$root" 2>>"$out/app.err"; then
			DISPLAY=$display XAUTHORITY=$xauth xwd -root -silent | convert xwd:- "$root" ||
				fail "could not take a shot of the X screen $display"
		fi
		echo go >&"$to_app"
		check_shot "$out/$tag.png" "$fraction" "$tag (in-process shot)"
		inproc=$shot_pct
		check_shot "$root" "$fraction" "$tag (X screen shot)"
		summary+=("$(printf '%-6s bar %s%% red in-process, %s%% on the X screen; app: %s%%, "%s"' \
			"$tag:" "$inproc" "$shot_pct" "$percent" "$label")")
		;;
	"FLOOD "*) flood_line=$line ;;
	"CLOSE "*) close_at=${line#CLOSE at=} ;;
	PASS | "FAIL"*) verdict=${verdict:+$verdict; }$line ;;
	esac
done
exec {to_app}>&-
rc=0
wait "$app_pid" || rc=$?

if [ $use_valgrind = 1 ] && [ "$rc" -eq 99 ]; then
	grep -v '^==[0-9]*== *$' "$out/valgrind.log" | head -n 60 >&2
	fail "valgrind reports errors or definite leaks (whole report: $out/valgrind.log)"
fi
if [ "$rc" -ne 0 ] || [ "$verdict" != PASS ]; then
	show_app_logs
	[ "$rc" -eq 124 ] && fail "the app did not end within ${run_timeout} s"
	fail "the self-test says: ${verdict:-nothing} (exit code $rc)"
fi
[ ${#summary[@]} -eq 2 ] || { show_app_logs; fail "expected 2 screenshots, got ${#summary[@]}"; }
[ -n "$flood_line" ] || { show_app_logs; fail "no FLOOD line"; }
rate=$(sed -n 's/.* ticks_per_s=\([0-9.]*\).*/\1/p' <<<"$flood_line")
events=$(sed -n 's/.* delivered=\([0-9]*\).*/\1/p' <<<"$flood_line")
secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$flood_line")
ticks=$(sed -n 's/.* ticks=\([0-9]*\).*/\1/p' <<<"$flood_line")
busy_ticks=$(sed -n 's/.* backlog_ticks=\([0-9]*\).*/\1/p' <<<"$flood_line")
busy_rate=$(sed -n 's/.* backlog_ticks_per_s=\([0-9.]*\).*/\1/p' <<<"$flood_line")
max_backlog=$(sed -n 's/.* max_backlog=\([0-9]*\).*/\1/p' <<<"$flood_line")
awk -v r="$rate" -v m="$min_tick_rate" 'BEGIN { exit !(r >= m) }' ||
	fail "under the flood GTK drew $rate frames/s (< $min_tick_rate): $flood_line"
[ "${busy_ticks:-0}" -gt 0 ] ||
	fail "no frame found events waiting: the flood did not flood, nothing was measured: $flood_line"

vg=
[ $use_valgrind = 1 ] && vg=" under valgrind (no errors, no definite leaks)"
echo "test-xvfb: PASS$vg in $((SECONDS - start_s)) s (shots in $out)"
for s in "${summary[@]}"; do
	echo "  $s"
done
echo "  flood:  $events progress events in $secs s: $rate frame ticks/s (>= $min_tick_rate);" \
	"$busy_ticks of the $ticks ticks with events waiting ($busy_rate/s), up to $max_backlog waiting"
echo "  close:  window closed at ${close_at:-?}%, worker interrupted, clean exit"
