#!/usr/bin/env bash
# Refresh constraints.txt, the pinned versions every install uses, from pyproject.toml's ranges.
#
#   scripts/lock.sh            re-resolve, keeping current pins where the ranges still allow them
#   scripts/lock.sh --upgrade  take the newest versions the ranges allow, then run the whole suite
#                              against them in a fresh venv; commit constraints.txt only if it is green
#
# One universal file (markers per Python version and platform, Python 3.10+), made by uv, so the
# desktop (x86-64 tensorflow-cpu, elsewhere tensorflow) and the device (aarch64 Pi, Jetson) read
# the same lock. Needs uv (`pip install uv`).
set -euo pipefail
cd "$(dirname "$0")/.."
upgrade=()
[[ "${1:-}" == "--upgrade" ]] && upgrade=(--upgrade)

# uv keeps the pins it finds in the output file unless --upgrade: start from the current lock
[[ -f constraints.txt ]] && cp constraints.txt constraints.txt.new
# uv ignores upper bounds of Requires-Python; pip does not. Where a release narrows it, keep the
# older release for the Pythons it dropped, or pip finds the lock unsatisfiable there.
known=$(mktemp)
cat > "$known" <<'PINS'
backports.strenum<1.3 ; python_version >= "3.11"  # 1.3.x: Requires-Python <3.11 (ai-edge-litert needs it)
PINS
uv pip compile pyproject.toml --constraint "$known" --extra test --universal --python-version 3.10 "${upgrade[@]}" \
  --quiet --custom-compile-command scripts/lock.sh --output-file constraints.txt.new
{
  echo "# The lock: pinned versions every install uses (pip install -c constraints.txt -e \".[edge]\" or .[desktop], .[test])."
  grep -v "^# The lock:" constraints.txt.new
} > constraints.txt
rm constraints.txt.new
echo "constraints.txt: $(grep -c '==' constraints.txt) pins"

if [[ ${#upgrade[@]} -gt 0 ]]; then
  venv=$(mktemp -d)/venv
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -c constraints.txt -e ".[test]"
  "$venv/bin/python" -m pytest
  echo "green with the new pins: review 'git diff constraints.txt' and commit it"
fi
