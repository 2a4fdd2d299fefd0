#!/usr/bin/env bash
# Mutation testing with mutmut: for each named module, plant small bugs (mutants) one at a time and run the
# module's own tests against each; print the score (killed / all mutants) and the mutants that survived.
#
#   bash scripts/mutation.sh                                   # the modules in DEFAULT_MODULES below
#   bash scripts/mutation.sh src/nexus/sinks/limiter.py nexus.events.spindles
#   MUTATION_TESTS="tests/sinks/test_limiter.py" bash scripts/mutation.sh nexus.sinks.limiter
#   MUTATION_JOBS=2 bash scripts/mutation.sh ...               # parallel test processes (default 1)
#
# Each module runs in its own scratch copy, mutants/<module>/ (git-ignored), so the working tree is never
# touched and runs of different modules do not share state; `cd mutants/<module> && mutmut show NAME` shows a
# mutant's diff afterwards. A survivor is a planted bug that no test noticed: add a test that fails on it, or, when
# the mutant cannot change behaviour, mark the line `# pragma: no mutate` with the reason on the same line.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
mutmut="$root/.venv/bin/mutmut"
[ -x "$mutmut" ] || { echo "mutation: $mutmut not found; run: bash scripts/setup.sh dev" >&2; exit 2; }

DEFAULT_MODULES=(
  nexus.sinks.limiter
  nexus.store.recording
  nexus.events.spindles
  nexus.events.slow_waves
  nexus.events.arousals
)

# The tests that exercise a module: its own test files where it has them, else its package's test folder.
tests_for() {
  case "$1" in
    nexus.store.recording) echo "tests/store/test_recording*.py" ;;
    nexus.events.*) echo "tests/events" ;;
    nexus.sinks.*) echo "tests/sinks" ;;
    *) local layer="${1#nexus.}"; echo "tests/${layer%%.*}" ;;
  esac
}

# Accept src/nexus/a/b.py, nexus/a/b.py, nexus.a.b or a.b.
to_module() {
  local m="$1"
  m="${m#src/}"; m="${m%.py}"; m="${m//\//.}"
  [[ "$m" == nexus.* ]] || m="nexus.$m"
  echo "$m"
}

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=("${DEFAULT_MODULES[@]}")
jobs="${MUTATION_JOBS:-1}"
summary=()
status=0

for arg in "${modules[@]}"; do
  mod="$(to_module "$arg")"
  file="src/${mod//.//}.py"
  [ -f "$file" ] || { echo "mutation: no module $mod (expected $file)" >&2; exit 2; }
  # shellcheck disable=SC2206  # the glob in the test selection is meant to expand
  tests=(${MUTATION_TESTS:-$(tests_for "$mod")})
  for t in "${tests[@]}"; do [ -e "$t" ] || { echo "mutation: test path $t not found" >&2; exit 2; }; done

  work="mutants/$mod"
  rm -rf "$work"
  mkdir -p "$work/tests"
  cp -r src "$work/"
  cp tests/conftest.py "$work/tests/"
  [ -d tests/data ] && cp -r tests/data "$work/tests/"
  for t in "${tests[@]}"; do mkdir -p "$work/$(dirname "$t")"; cp -r "$t" "$work/$(dirname "$t")/"; done
  find "$work" -name __pycache__ -prune -exec rm -rf {} +
  sel=""
  for t in "${tests[@]}"; do sel+="\"$t\", "; done
  {
    cat pyproject.toml
    printf '\n[tool.mutmut]\nsource_paths = ["src"]\nonly_mutate = ["%s"]\n' "$file"
    printf 'pytest_add_cli_args_test_selection = [%s]\n' "${sel%, }"
    printf 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q"]\nuse_git_change_detection = false\n'
  } > "$work/pyproject.toml"

  echo "== $mod: mutating $file, tests: ${tests[*]}"
  (cd "$work" && nice -n 15 "$mutmut" run --max-children "$jobs" > mutmut-run.log 2>&1) \
    || { echo "mutation: mutmut failed for $mod; see $work/mutmut-run.log" >&2; tail -n 20 "$work/mutmut-run.log" >&2; status=1; continue; }
  (cd "$work" && "$mutmut" results --all true) > "$work/results.txt"
  total=$(grep -c ': ' "$work/results.txt" || true)
  killed=$(grep -cE ': (killed|timeout|segfault|caught by type check)$' "$work/results.txt" || true)
  pragmas=$(grep -c 'pragma: no mutate' "$file" || true)
  score=$(awk -v k="$killed" -v t="$total" 'BEGIN { printf "%.1f", t ? 100 * k / t : 0 }')
  echo "   survivors (cd $work && $mutmut show NAME):"
  grep -vE ': (killed|timeout|segfault|caught by type check)$' "$work/results.txt" | sed 's/^ */     /' || true
  line="$mod: $killed/$total killed = $score%  ($pragmas lines with 'pragma: no mutate')"
  echo "   $line"
  summary+=("$line")
done

echo
echo "Mutation scores:"
printf '  %s\n' "${summary[@]}"
exit "$status"
