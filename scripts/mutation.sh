#!/usr/bin/env bash
# Mutation testing with mutmut: for each named module, plant small bugs (mutants) one at a time and run the
# module's own tests against each; print the score (killed / all mutants) and the mutants that survived.
#
#   bash scripts/mutation.sh                                   # the modules in DEFAULT_MODULES below
#   bash scripts/mutation.sh src/nexus/sinks/limiter.py nexus.events.spindles
#   MUTATION_TESTS="tests/sinks/test_limiter.py" bash scripts/mutation.sh nexus.sinks.limiter
#   MUTATION_JOBS=2 bash scripts/mutation.sh ...               # parallel test processes (default 1)
#   MUTATION_SAMPLE=120 bash scripts/mutation.sh MODULE        # score a seeded random sample of the mutants
#                                                              # (MUTATION_SEED, default 1; same seed = same sample)
#   MUTATION_REF=HEAD bash scripts/mutation.sh MODULE          # mutate a commit (src, tests) instead of the tree
#   MUTATION_RERUN=survivors bash scripts/mutation.sh MODULE   # after adding tests: rerun only the last survivors
#                                                              # (a full run when the module's source changed)
#   MUTATION_DESELECT="slow_test or other" bash scripts/mutation.sh MODULE  # leave tests out (pytest -k "not (...)"),
#                                                              # e.g. a whole-facility test that takes minutes a run
#   MUTATION_ONLY='_ahead_crossings__' MUTATION_SAMPLE=80 bash scripts/mutation.sh MODULE  # draw the sample only
#                                                              # from mutants whose names match this regex (one part
#                                                              # of a module, e.g. the controller's tick mode)
#   MUTATION_TIMEOUT=3 MUTATION_TIMEOUT_S=10 bash scripts/mutation.sh MODULE  # per-mutant time limit (defaults)
#
# Per-mutant time limit: a mutant whose tests run longer than MUTATION_TIMEOUT x (the clean run's time of the tests
# that reach it + MUTATION_TIMEOUT_S seconds), wall clock, is stopped and counted as killed by timeout (mutmut's
# meaning: the bug made the tests hang, e.g. an endless loop). These are mutmut 3.x's own timeout_multiplier and
# timeout_constant in [tool.mutmut] (mutmut's defaults, 15 x (t + 1 s), let one hanging mutant of a module whose
# tests take ~25 s stall the run for over 6 minutes). The tests' times come from the same run (also niced), so
# 3 x leaves room for the machine's load to change; the timeouts are listed apart after the survivors, to be read:
# a mutant that is merely slow under a sudden load would be counted killed, so rerun it (MUTATION_RERUN=survivors
# does not rerun timeouts; name a larger MUTATION_TIMEOUT and run the module again) when one looks doubtful.
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
  work="mutants/$mod"
  rerun=()
  snap="$root"
  if [ -n "${MUTATION_REF:-}" ]; then  # a clean copy of the commit: src, tests, pyproject.toml
    snap="$root/mutants/.snapshot-$mod"
    rm -rf "$snap" && mkdir -p "$snap"
    git archive "$MUTATION_REF" src tests pyproject.toml | tar -x -C "$snap"
  fi
  [ -f "$snap/$file" ] || { echo "mutation: no module $mod (expected $file)" >&2; exit 2; }
  # the test selection may hold globs: expand them in the copy that is tested
  mapfile -t tests < <(cd "$snap" && for t in ${MUTATION_TESTS:-$(tests_for "$mod")}; do echo "$t"; done)
  for t in "${tests[@]}"; do [ -e "$snap/$t" ] || { echo "mutation: test path $t not found" >&2; exit 2; }; done
  if [ "${MUTATION_RERUN:-}" = survivors ] && [ -f "$work/results.txt" ] && cmp -s "$snap/$file" "$work/$file"; then
    mapfile -t rerun < <(grep -vE ': (killed|timeout|segfault|caught by type check)$' "$work/results.txt" | sed 's/^ *//; s/: .*//')
    if [ ${#rerun[@]} -eq 0 ]; then echo "== $mod: no survivors to rerun"; fi
    # fresh tests and a fresh map of which tests reach which mutant (mutmut would keep the old one); the
    # mutants killed before stay killed (tests were only added), their verdicts are kept from the last results
    rm -rf "$work/tests" "$work/mutants/tests" "$work/mutants/mutmut-stats.json"
    cp "$work/results.txt" "$work/results-before.txt"
  else
    rm -rf "$work"
    mkdir -p "$work"
    cp -r "$snap/src" "$work/"
  fi
  mkdir -p "$work/tests"
  cp "$snap/tests/conftest.py" "$work/tests/"
  [ -d "$snap/tests/data" ] && cp -r "$snap/tests/data" "$work/tests/"
  [ -d "$snap/examples" ] && rm -rf "$work/examples" && cp -r "$snap/examples" "$work/"  # example programs tests read
  for t in "${tests[@]}"; do mkdir -p "$work/$(dirname "$t")"; cp -r "$snap/$t" "$work/$(dirname "$t")/"; done
  # the conftest.py of every folder between tests/ and the selected paths (their fixtures)
  for t in "${tests[@]}"; do
    d="$(dirname "$t")"
    while [ "$d" != "." ] && [ "$d" != "tests" ] && [ "$d" != "/" ]; do
      if [ -f "$snap/$d/conftest.py" ]; then mkdir -p "$work/$d"; cp "$snap/$d/conftest.py" "$work/$d/"; fi
      d="$(dirname "$d")"
    done
  done
  find "$work" -name __pycache__ -prune -exec rm -rf {} +
  sel=""
  for t in "${tests[@]}"; do sel+="\"$t\", "; done
  {
    cat "$snap/pyproject.toml"
    printf '\n[tool.mutmut]\nsource_paths = ["src"]\nonly_mutate = ["%s"]\n' "$file"
    [ -d "$work/examples" ] && printf 'also_copy = ["examples"]\n'
    printf 'pytest_add_cli_args_test_selection = [%s]\n' "${sel%, }"
    deselect=""
    [ -z "${MUTATION_DESELECT:-}" ] || deselect=", \"-k\", \"not (${MUTATION_DESELECT//\"/\\\"})\""
    printf 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q"%s]\nuse_git_change_detection = false\n' "$deselect"
    printf 'timeout_multiplier = %s\ntimeout_constant = %s\n' "${MUTATION_TIMEOUT:-3}" "${MUTATION_TIMEOUT_S:-10}"
  } > "$work/pyproject.toml"

  sample=()
  if [ -n "${MUTATION_SAMPLE:-}" ] && [ ${#rerun[@]} -eq 0 ]; then
    # generate the mutants and the map of which tests reach them, running none (a name that matches no mutant:
    # mutmut then stops with "nothing matches"), then draw the sample from their names
    (cd "$work" && nice -n 15 "$mutmut" run --max-children "$jobs" "generate-only" > mutmut-generate.log 2>&1) \
      || grep -q "nothing matches" "$work/mutmut-generate.log" \
      || { echo "mutation: mutmut failed for $mod; see $work/mutmut-generate.log" >&2; status=1; continue; }
    mapfile -t sample < <(grep -oE "'[^']*__mutmut_[0-9]+'" "$work/mutants/$file" | tr -d "'" | sed "s/^/$mod./" \
      | grep -E -- "${MUTATION_ONLY:-.}" | sort -u | sort -R --random-source=<(yes "${MUTATION_SEED:-1}") | head -n "$MUTATION_SAMPLE" | sort)
    printf '%s\n' "${sample[@]}" > "$work/sample.txt"
    rerun=("${sample[@]}")
  fi
  echo "== $mod: mutating $file, tests: ${tests[*]}${rerun:+ (running ${#rerun[@]} chosen mutants)}"
  (cd "$work" && nice -n 15 "$mutmut" run --max-children "$jobs" "${rerun[@]}" > mutmut-run.log 2>&1) \
    || { echo "mutation: mutmut failed for $mod; see $work/mutmut-run.log" >&2; tail -n 20 "$work/mutmut-run.log" >&2; status=1; continue; }
  (cd "$work" && "$mutmut" results --all true) > "$work/results.txt"
  if [ ${#rerun[@]} -gt 0 ] && [ -f "$work/results-before.txt" ]; then
    # a mutant not rerun keeps its verdict from the run before
    awk -F': ' 'NR == FNR { old[$1] = $2; next } $2 == "not checked" && ($1 in old) { $0 = $1 ": " old[$1] } { print }' \
      "$work/results-before.txt" "$work/results.txt" > "$work/results-merged.txt"
    mv "$work/results-merged.txt" "$work/results.txt"
    rm -f "$work/results-before.txt"
  fi
  if [ -f "$work/sample.txt" ]; then  # score the sample only (also when rerunning its survivors)
    grep -F -f <(sed 's/$/:/' "$work/sample.txt") "$work/results.txt" > "$work/results-sample.txt" || true
    all=$(grep -c ': ' "$work/results.txt" || true)
    mv "$work/results-sample.txt" "$work/results.txt"
    echo "   sample of $(wc -l < "$work/sample.txt") of $all mutants (seed ${MUTATION_SEED:-1})"
  fi
  total=$(grep -c ': ' "$work/results.txt" || true)
  killed=$(grep -cE ': (killed|timeout|segfault|caught by type check)$' "$work/results.txt" || true)
  pragmas=$(grep -c 'pragma: no mutate' "$snap/$file" || true)
  score=$(awk -v k="$killed" -v t="$total" 'BEGIN { printf "%.1f", t ? 100 * k / t : 0 }')
  echo "   survivors (cd $work && $mutmut show NAME):"
  grep -vE ': (killed|timeout|segfault|caught by type check)$' "$work/results.txt" | sed 's/^ */     /' || true
  timeouts=$(grep -c ': timeout$' "$work/results.txt" || true)
  if [ "$timeouts" -gt 0 ]; then
    echo "   killed by timeout (counted killed; the limit: MUTATION_TIMEOUT=${MUTATION_TIMEOUT:-3} x (t + ${MUTATION_TIMEOUT_S:-10} s)):"
    grep -E ': timeout$' "$work/results.txt" | sed 's/^ */     /'
  fi
  line="$mod: $killed/$total killed = $score% ($timeouts by timeout)  ($pragmas lines with 'pragma: no mutate')"
  echo "   $line"
  summary+=("$line")
done

echo
echo "Mutation scores:"
printf '  %s\n' "${summary[@]}"
exit "$status"
