#!/usr/bin/env bash
# Run every fault script in benchmarks/faults/ and collect their tables in one Markdown file.
#
#   benchmarks/faults/run_all.sh [--full] [-o FILE] [--list]
#
# Quick mode (the default) gives each script short outages and few repeats, so the whole suite
# takes minutes; --full runs each with its own defaults (the issue's month: 60 s outages, x10).
# A script that fails is recorded with its exit status and the runner goes on: the last line says
# how many failed, and the exit status is non-zero if any did. Traffic stays on 127.0.0.1.
# Scripts: stream_*.py and alerts_*.py (stream_common.py is their shared code, not a script).
set -u

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
mode=quick
list=0
out="$root/benchmarks/results/faults_run_all.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --full) mode=full ;;
    --list) list=1 ;;
    -o) out="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see $0 --help)" >&2; exit 2 ;;
  esac
  shift
done

# The quick arguments of each script; a script not named here runs with its defaults.
quick_args() {
  case "$1" in
    stream_sigterm.py) echo "--runs 1" ;;
    stream_stall.py) echo "--stall 2 --frozen 4" ;;
    stream_restart.py) echo "--times 3 --down 1" ;;
    stream_down_at_start.py) echo "--down 3" ;;
    alerts_faults.py) echo "" ;;  # one run per scenario: see alerts_runs
    *) echo "" ;;
  esac
}

# alerts_faults.py takes a scenario: each is one run (quick: short outages, 3 kills, a short soak).
alerts_runs() {
  if [ "$mode" = quick ]; then
    printf '%s\n' "broker-down --down-s 5 --run-s 10" "webhook-500 --down-s 5 --run-s 10" \
      "slow-receiver --run-s 5" "kill9 --kills 3 --kill-every-s 3" "full-disk --run-s 10" \
      "soak --run-s 30 --every-s 5"
  else
    printf '%s\n' broker-down webhook-500 slow-receiver kill9 full-disk "soak --run-s 600"
  fi
}

runs() {  # one line per run: SCRIPT ARGS...
  for script in "$here"/stream_*.py "$here"/alerts_*.py; do
    [ -e "$script" ] || continue
    name="$(basename "$script")"
    [ "$name" = stream_common.py ] && continue
    if [ "$name" = alerts_faults.py ]; then
      alerts_runs | while IFS= read -r args; do echo "$name $args"; done
    elif [ "$mode" = quick ]; then
      echo "$name $(quick_args "$name")"
    else
      echo "$name"
    fi
  done
}

if [ $list -eq 1 ]; then runs; exit 0; fi  # what would run, one line each

mkdir -p "$(dirname "$out")"
failed=0
total=0
{
  echo "# Fault suite ($mode), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "Produced by \`benchmarks/faults/run_all.sh$([ "$mode" = full ] && echo " --full")\` on $(uname -srm)."
} >"$out"
while IFS= read -r run; do
  # shellcheck disable=SC2086  # the arguments are meant to split
  set -- $run
  name="$1"
  shift
  total=$((total + 1))
  echo "== $name $*" >&2
  log="$(mktemp)"
  (cd "$root" && "$python" "$here/$name" "$@") >"$log" 2>&1
  status=$?
  [ $status -ne 0 ] && failed=$((failed + 1))
  {
    echo
    echo "## \`$name $*\` (exit $status)"
    echo
    if [ $status -eq 0 ]; then cat "$log"; else echo '```'; tail -n 30 "$log"; echo '```'; fi
  } >>"$out"
  rm -f "$log"
done < <(runs)

echo >>"$out"
echo "$total runs, $failed failed." | tee -a "$out" >&2
echo "tables: $out" >&2
[ $failed -eq 0 ]
