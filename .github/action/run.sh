#!/usr/bin/env bash
# The spark-ls GitHub Action's check step (action.yml runs it; tests/test_install_ci_integration.py
# runs it too, with the same INPUT_* variables). One `spark-ls check` calls the model and records
# its replies; every other requested format is a replay of that recording (no second model call).
#
# Inputs (environment): INPUT_PATHS, INPUT_ACTIONS, INPUT_INSTRUCTION, INPUT_FORMAT (comma list of
# sarif,github,diff,json), INPUT_CHANGED_SINCE ("auto": the pull request's base branch), INPUT_SHARD,
# INPUT_VERIFY, INPUT_JOBS, INPUT_MODEL, INPUT_BASE_URL, INPUT_OUTPUT_DIR, INPUT_LOCAL_MODEL.
# Outputs ($GITHUB_OUTPUT): status (0 nothing proposed, 1 proposals, 2 error, skipped), sarif,
# patch, json (paths of the files written), suffix (-I-of-N when sharded, for artifact names).
set -uo pipefail

out_dir=${INPUT_OUTPUT_DIR:-spark-ls-results}
mkdir -p "$out_dir"
output() { echo "$1=$2" >> "${GITHUB_OUTPUT:-/dev/null}"; }

if [ -z "${OPENAI_API_KEY:-}" ] && [ -z "${OPENAI_BASE_URL:-}" ] && [ -z "${INPUT_BASE_URL:-}" ] \
   && [ "${INPUT_LOCAL_MODEL:-false}" != "true" ]; then
  # Pull requests from forks get no secrets: skip rather than fail.
  echo "::notice title=spark-ls::skipped: no OPENAI_API_KEY (pull requests from forks get no secrets) and local-model is off"
  output status skipped
  exit 0
fi

args=()
IFS=' ' read -r -a paths <<< "${INPUT_PATHS:-.}"
[ -n "${INPUT_ACTIONS:-}" ] && args+=(--action "$INPUT_ACTIONS")
[ -n "${INPUT_INSTRUCTION:-}" ] && args+=(--instruction "$INPUT_INSTRUCTION")
if [ -n "${INPUT_SHARD:-}" ]; then
  args+=(--shard "$INPUT_SHARD")
  output suffix "-${INPUT_SHARD//\//-of-}"   # 1/4 -> -1-of-4 (artifact names take no slash)
fi
[ -n "${INPUT_VERIFY:-}" ] && args+=(--verify "$INPUT_VERIFY")
[ -n "${INPUT_MODEL:-}" ] && args+=(--model "$INPUT_MODEL")
[ -n "${INPUT_BASE_URL:-}" ] && args+=(--base-url "$INPUT_BASE_URL")
since=${INPUT_CHANGED_SINCE:-auto}
if [ "$since" = "auto" ]; then
  since=""
  [ -n "${GITHUB_BASE_REF:-}" ] && since="origin/$GITHUB_BASE_REF"
fi
[ -n "$since" ] && args+=(--changed-since "$since")

formats=${INPUT_FORMAT:-sarif,github,diff}
replies="$out_dir/spark-ls.replies.jsonl"
file_for() {
  case "$1" in
    sarif) echo "$out_dir/spark-ls.sarif" ;;
    diff) echo "$out_dir/spark-ls.patch" ;;
    json) echo "$out_dir/spark-ls.json" ;;
    github) echo "" ;;
    *) echo "::error title=spark-ls::unknown format '$1' (sarif, github, diff, json)" >&2; return 2 ;;
  esac
}

status=""
IFS=',' read -r -a wanted <<< "$formats"
for fmt in "${wanted[@]}"; do
  fmt=$(echo "$fmt" | tr -d '[:space:]')
  [ -z "$fmt" ] && continue
  file=$(file_for "$fmt") || { output status 2; exit 2; }
  run=(spark-ls check "${paths[@]}" "${args[@]}" --jobs "${INPUT_JOBS:-8}" --format "$fmt")
  [ -n "$file" ] && run+=(--output "$file")
  if [ -z "$status" ]; then
    "${run[@]}" --record "$replies"
    status=$?
    [ "$status" -ge 2 ] && break
  else
    "${run[@]}" --quiet --replay "$replies"
    code=$?
    if [ "$code" -ne "$status" ]; then
      echo "::error title=spark-ls::the $fmt replay exited $code, the recorded run $status"
      status=2
      break
    fi
  fi
  case "$fmt" in sarif) output sarif "$file" ;; diff) output patch "$file" ;; json) output json "$file" ;; esac
done
output status "${status:-0}"
# 0 and 1 are results (the action's fail-on-proposals input decides about 1); 2 is an error.
[ "${status:-0}" -ge 2 ] && exit "$status"
exit 0
