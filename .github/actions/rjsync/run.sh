#!/usr/bin/env bash
# The composite action's work (action.yml beside this file passes its inputs as RJSYNC_*).
#
# For each manifest (a file, or a folder of them): plan with --detailed-exitcode (0 no changes,
# 2 changes, 1 error); with command=apply, apply when the plan is not empty. All plans go, as
# one markdown document, to the job summary and, with comment=true on a pull request, to ONE
# comment kept up to date by `rjsync github comment`. Sets the outputs exit-code (the worst:
# 1 over 2 over 0), has-changes and markdown-file. Fails the step on exit code 1 only.
# shellcheck disable=SC2016 # backticks in single quotes are markdown, not command substitution
set -uo pipefail

command=${RJSYNC_COMMAND:-plan}
format=${RJSYNC_FORMAT:-markdown}
case $command in plan | apply) ;; *)
    echo "::error::rjsync action: command must be plan or apply, not '$command'"
    exit 1
    ;;
esac
case $format in markdown | text | json) ;; *)
    echo "::error::rjsync action: format must be markdown, text or json, not '$format'"
    exit 1
    ;;
esac
read -r -a manifests <<<"${RJSYNC_MANIFEST:-}"
if [[ ${#manifests[@]} -eq 0 ]]; then
    echo "::error::rjsync action: the manifest input is empty"
    exit 1
fi

common=()
[[ -n ${RJSYNC_REF:-} ]] && common+=(--ref "$RJSYNC_REF")
[[ -n ${RJSYNC_AUTH:-} ]] && common+=(--auth "$RJSYNC_AUTH")
extra=()
read -r -a extra <<<"${RJSYNC_ARGS:-}"

work=${RUNNER_TEMP:-/tmp}/rjsync-$$
mkdir -p "$work"
body=$work/plan.md
marker=${RJSYNC_MARKER:-<!-- rjsync-plan -->}
printf '%s\n' "$marker" >"$body"

worst=0
has_changes=false
for manifest in "${manifests[@]}"; do
    echo "::group::rjsync $command --manifest $manifest"
    out=$work/out.txt
    rjsync plan --manifest "$manifest" "${common[@]}" "${extra[@]}" --format "$format" --detailed-exitcode >"$out"
    code=$?
    cat "$out"
    [[ $code -eq 2 ]] && has_changes=true
    if [[ $command == apply && $code -ne 0 ]]; then
        # exit 1 can be one broken runbook or account: apply still does what it can
        rjsync apply --manifest "$manifest" "${common[@]}" "${extra[@]}" --auto-approve 2>&1 | tee "$work/apply.txt"
        code=${PIPESTATUS[0]}
    fi
    echo "::endgroup::"

    {
        printf '\n**Manifest `%s`**' "$manifest"
        case $code in 0 | 2) printf '\n\n' ;; *) printf ' (failed, exit code %s)\n\n' "$code" ;; esac
        if [[ $format == markdown ]]; then
            grep -v -F -x -e '<!-- rjsync-plan -->' -e "$marker" "$out"
        else
            printf '```\n%s\n```\n' "$(cat "$out")"
        fi
        if [[ $command == apply && -f $work/apply.txt ]]; then
            printf '\n<details><summary>apply log</summary>\n\n```\n%s\n```\n\n</details>\n' "$(tail -c 50000 "$work/apply.txt")"
            rm -f "$work/apply.txt"
        fi
    } >>"$body"

    if [[ $code -ne 0 && $code -ne 2 ]]; then
        echo "::error::rjsync $command failed for $manifest (exit code $code)"
        worst=1
    elif [[ $code -eq 2 && $worst -eq 0 ]]; then
        worst=2
    fi
done

if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
    cat "$body" >>"$GITHUB_STEP_SUMMARY"
fi

if [[ ${RJSYNC_COMMENT:-false} == true ]]; then
    if [[ $command != plan ]]; then
        echo "::warning::rjsync action: comment=true only applies to command=plan"
    elif [[ ${GITHUB_EVENT_NAME:-} != pull_request* ]]; then
        echo "::notice::rjsync action: not a pull request event, no comment posted"
    else
        rjsync github comment "$body" --marker "$marker" || worst=1
    fi
fi

if [[ -n ${GITHUB_OUTPUT:-} ]]; then
    {
        echo "exit-code=$worst"
        echo "has-changes=$has_changes"
        echo "markdown-file=$body"
    } >>"$GITHUB_OUTPUT"
fi

# a plan with changes (2) is a success; only errors fail the step
[[ $worst -eq 1 ]] && exit 1
exit 0
