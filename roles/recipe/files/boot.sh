# shellcheck shell=sh
# kubedebug.ephemeral recipe boot: runs a recipe under a time limit and at low priority.
#
#   sh -c BOOT kd-boot LIMIT NICE SCRIPT NAME [ARG...]
#
# runs `sh -c SCRIPT NAME ARG...` (the prelude and the recipe, as before) with a niceness
# of NICE and stopped after LIMIT seconds. Everything stays a positional argument: no
# value is ever part of a shell text.
#
# Niceness: `nice -n` where the image has it, else `renice -n` on this shell (which the
# script inherits), else none; raising one's own niceness needs no privilege.
# Time: GNU coreutils' `timeout` where the image has it (it stops the script's whole
# process group), else a watchdog the prelude starts (kd_watchdog), which stops the
# script and everything it started; without sleep either, none. Busybox's timeout is
# not used for this (see below), but the scripts' own kd_timeout still uses it.
# The script learns what was applied from KD_BOUND_TIME (timeout, watchdog, none),
# KD_BOUND_NICE (nice, renice, already, none), KD_TIME_LIMIT and KD_NICE, and the prelude
# prints them as the first line, {"bounds": {...}}. When the limit stopped the script this
# shell prints a last {"bounds": {"timed_out": true, ...}} line and exits 124, as
# coreutils' timeout does, whichever way it was stopped.
# Works with dash, bash and busybox sh, with nothing but busybox applets on PATH.
# No Jinja markers (brace-hash, brace-percent, double braces) anywhere in this file:
# the roles pass it through Ansible variables.

# The log is parsed as JSON lines: tools' complaints (renice's, timeout's) go nowhere.
exec 2>/dev/null

kd_limit=$1 kd_nice=$2 kd_script=$3
case $kd_limit:$kd_nice in
  [1-9]*:[0-9]*) ;;
  *) kd_limit=x ;;
esac
case $kd_limit:$kd_nice in
  *[!0-9:]*)
    # recipe_plan only ever passes numbers: this is someone calling the boot by hand.
    printf '{"check":"bounds","target":"boot","ok":false,"detail":"usage: BOOT LIMIT NICE SCRIPT NAME [ARG...]"}\n'
    exit 2
    ;;
esac
shift 3
set -- sh -c "$kd_script" "$@"

# kd_boot_niceness: _kd_ni, this shell's niceness (field 19 of /proc/$$/stat; empty when
# unreadable). The name (field 2) may hold blanks and parentheses: skip past its last ')'.
kd_boot_niceness() {
  _kd_ni=''
  read -r _kd_st <"/proc/$$/stat" || return 0
  # shellcheck disable=SC2086 # split into the fields on purpose
  set -- ${_kd_st##*) }
  [ $# -ge 17 ] && _kd_ni=${17}
}

have() { command -v "$1" >/dev/null 2>&1; }

kd_boot_niceness
kd_from=${_kd_ni:-0}
KD_BOUND_NICE=none
if [ "$kd_from" -ge "$kd_nice" ]; then
  # Already as low (a container or node that runs everything niced): never raise priority.
  KD_BOUND_NICE=already
elif have nice; then
  set -- nice -n "$((kd_nice - kd_from))" "$@"
  KD_BOUND_NICE='nice'
elif have renice && renice -n "$((kd_nice - kd_from))" -p "$$" >/dev/null; then
  KD_BOUND_NICE='renice'
fi

# Only GNU coreutils' timeout (the one with --foreground) stops what the script started
# too: it signals its whole process group. Busybox's signals the script's shell alone,
# and its watcher process leaves the script's ancestry (the processes recipe would list
# it as the target's): there the watchdog does the job.
if have timeout && timeout --foreground 1 true >/dev/null; then
  KD_TIMEOUT_STYLE=std KD_BOUND_TIME=timeout
  # KILL 5 seconds later, for a script that ignores TERM.
  set -- timeout -k 5 "$kd_limit" "$@"
elif have sleep; then
  KD_BOUND_TIME=watchdog
else
  KD_BOUND_TIME=none
fi
KD_TIME_LIMIT=$kd_limit KD_NICE=$kd_nice
export KD_BOUND_TIME KD_BOUND_NICE KD_TIME_LIMIT KD_NICE
# The scripts' own kd_timeout then needs no probe (with busybox's it probes on first use).
[ "$KD_BOUND_TIME" != timeout ] || export KD_TIMEOUT_STYLE

kd_start=$(date +%s)
"$@"
kd_rc=$?
case $kd_rc in
  124 | 137 | 143)
    # A script may end with these statuses by itself: it was the limit only if it ran
    # that long (whole seconds from date can only overstate a run of LIMIT seconds).
    # Without date, the status alone decides.
    kd_end=$(date +%s) kd_elapsed=''
    case $kd_start:$kd_end in
      *[!0-9:]* | :* | *:) ;;
      *) kd_elapsed=$((kd_end - kd_start)) ;;
    esac
    if [ -z "$kd_elapsed" ] || [ "$kd_elapsed" -ge "$kd_limit" ]; then
      # The newline ends a line the script may have been stopped in the middle of (the
      # lookup skips empty lines).
      printf '\n{"bounds":{"timed_out":true,"time_limit":%s,"time_limit_by":"%s","exit_code":%s,"elapsed":%s}}\n' \
        "$kd_limit" "$KD_BOUND_TIME" "$kd_rc" "${kd_elapsed:-null}"
      exit 124
    fi
    ;;
esac
exit "$kd_rc"
