# shellcheck shell=sh
# kubedebug.ephemeral recipe "python": Python stack dumps of the target container's
# Python processes with py-spy, from a debug container that shares its process
# namespace (targetContainerName).
#
#   python [--pid N] [--max-threads N] [--max-frames N]
#
#   --pid N          only this process (default: every python process of the target:
#                    its /proc/<pid>/exe or argv[0] is named python*, or libpython is
#                    mapped; this script and its children are left out as in the
#                    processes recipe)
#   --max-threads N  keep at most N threads per process (default 100)
#   --max-frames N   keep at most N frames per thread, innermost first (default 64)
#
# Lines, per process:
#   {"check":"stack_dump","target":"<pid>","ok":B,"detail":S,"tool":"py-spy"|"",
#    "threads":[{"thread_id":N,"name":S|null,"os_thread_id":N|null,"active":B|null,
#    "owns_gil":B|null,"frames":[{"function":S,"file":S,"line":N}...],
#    "frames_truncated":B}...],"truncated":B}
#      from py-spy dump --pid <pid> --json (innermost frame first). py-spy briefly
#      stops the process while it reads the stacks. ok is false when py-spy is missing
#      or cannot attach: it needs ptrace (the SYS_PTRACE capability, e.g. kubectl debug
#      --profile=sysadmin, and root or the target's user). truncated says threads were
#      left out (--max-threads).
#   {"check":"summary","target":"python","ok":B,"detail":"N Python processes","count":N}
#      ok is false when none was found or any line above is not ok.
#
# KD_PYTHON_TIMEOUT (environment): seconds before py-spy is killed, 1 to 600 (default
# 30). Runs after prelude.sh (json_num, emit_check, have, kd_isnum, kd_target_pids,
# kd_timeout) in any POSIX sh. Besides py-spy it needs grep, head, readlink and tr. py-spy's pretty-printed JSON is
# read line by line (its strings are copied as serde escaped them), so no JSON tool is
# needed in the image.
# No Jinja markers (brace-hash, brace-percent, double braces) anywhere in this file:
# the roles pass it through Ansible variables.

case "${KD_PYTHON_TIMEOUT:-}" in
  [1-9] | [1-9][0-9] | [1-5][0-9][0-9] | 600) ;;
  *) KD_PYTHON_TIMEOUT=30 ;;
esac

# --- Arguments ------------------------------------------------------------------------
USAGE='usage: python [--pid N] [--max-threads N] [--max-frames N]'
bad_args() {
  emit_check args python false "$1 ($USAGE)"
  emit_check summary python false "bad arguments" '"count":0'
  exit 2
}
only_pid=''
max_threads=100
max_frames=64
while [ $# -gt 0 ]; do
  case $1 in
    --pid)
      if [ $# -lt 2 ] || ! kd_isnum "$2"; then bad_args "--pid needs a process id"; fi
      only_pid=$2
      shift
      ;;
    --max-threads)
      if [ $# -lt 2 ] || ! kd_isnum "$2" || [ "$2" -eq 0 ]; then bad_args "--max-threads needs a positive number"; fi
      max_threads=$2
      shift
      ;;
    --max-frames)
      if [ $# -lt 2 ] || ! kd_isnum "$2" || [ "$2" -eq 0 ]; then bad_args "--max-frames needs a positive number"; fi
      max_frames=$2
      shift
      ;;
    *) bad_args "unknown argument: $1" ;;
  esac
  shift
done

# --- Finding Python processes -------------------------------------------------------
# is_python PID: its executable or argv[0] is named python*, or libpython is mapped
# (uwsgi and other embedders).
# shellcheck disable=SC2329 # kd_target_pids calls it
is_python() {
  _exe=$(readlink "/proc/$1/exe")
  _exe=${_exe% (deleted)}
  case ${_exe##*/} in
    python | python[0-9]*) return 0 ;;
  esac
  _argv0=$(tr '\000' '\n' <"/proc/$1/cmdline" | head -n 1)
  case ${_argv0##*/} in
    python | python[0-9]*) return 0 ;;
  esac
  grep -q '/libpython[0-9.]*[0-9]' "/proc/$1/maps"
}

if [ -n "$only_pid" ]; then
  PIDS=$only_pid
else
  kd_target_pids is_python
  PIDS=$KD_PIDS
fi

# --- Reading py-spy's JSON ------------------------------------------------------------
# py-spy prints serde's pretty JSON: a list of threads (keys indented by 4 spaces) with
# a list of frames each (keys indented by 8). Values are copied as they are once they
# look like the JSON scalar they should be.

# jval LINE PREFIX KIND: the value after PREFIX in LINE (without the trailing comma),
# if it is of KIND (str: a JSON string or null, num: a number or null, bool), else null.
jval() {
  _jv=${1#"$2"}
  _jv=${_jv%,}
  case $3:$_jv in
    str:\"*\" | *:null) printf '%s' "$_jv" ;;
    num:*) json_num "$_jv" ;;
    bool:true | bool:false) printf '%s' "$_jv" ;;
    *) printf 'null' ;;
  esac
}

# parse_dump JSON: sets THREADS (JSON members of the list), NTHREADS (all threads),
# KEPT (threads in THREADS), NFRAMES (frames kept in all threads).
parse_dump() {
  THREADS='' NTHREADS=0 KEPT=0 NFRAMES=0
  _in_frames=false
  _ifs=$IFS
  while IFS= read -r _l; do
    case $_l in
      '  {')
        _tid=null _tname=null _os=null _act=null _gil=null _frames='' _nf=0 _ftrunc=false _in_frames=false
        ;;
      '  }' | '  },')
        NTHREADS=$((NTHREADS + 1))
        if [ "$KEPT" -lt "$max_threads" ]; then
          THREADS="$THREADS${THREADS:+,}{\"thread_id\":$_tid,\"name\":$_tname,\"os_thread_id\":$_os,\"active\":$_act,\"owns_gil\":$_gil,\"frames\":[$_frames],\"frames_truncated\":$_ftrunc}"
          KEPT=$((KEPT + 1))
          NFRAMES=$((NFRAMES + _nf))
        fi
        ;;
      '    "thread_id": '*) _tid=$(jval "$_l" '    "thread_id": ' num) ;;
      '    "thread_name": '*) _tname=$(jval "$_l" '    "thread_name": ' str) ;;
      '    "os_thread_id": '*) _os=$(jval "$_l" '    "os_thread_id": ' num) ;;
      '    "active": '*) _act=$(jval "$_l" '    "active": ' bool) ;;
      '    "owns_gil": '*) _gil=$(jval "$_l" '    "owns_gil": ' bool) ;;
      '    "frames": [') _in_frames=true ;;
      '    ]' | '    ],') _in_frames=false ;;
      '      {') _fn=null _file=null _line=null ;;
      '      }' | '      },')
        [ "$_in_frames" = true ] || continue
        if [ "$_nf" -lt "$max_frames" ]; then
          _frames="$_frames${_frames:+,}{\"function\":$_fn,\"file\":$_file,\"line\":$_line}"
          _nf=$((_nf + 1))
        else
          _ftrunc=true
        fi
        ;;
      '        "name": '*) [ "$_in_frames" = true ] && _fn=$(jval "$_l" '        "name": ' str) ;;
      '        "filename": '*) [ "$_in_frames" = true ] && _file=$(jval "$_l" '        "filename": ' str) ;;
      '        "line": '*) [ "$_in_frames" = true ] && _line=$(jval "$_l" '        "line": ' num) ;;
    esac
  done <<EOF
$1
EOF
  IFS=$_ifs
}

# spy_error OUTPUT: py-spy's error message (the "Error:" line and the first cause).
spy_error() {
  _se=$(printf '%s\n' "$1" | sed -n -e '/^Stack backtrace:/q' -e '/^Error:/p' -e 's/^ *0: //p' | head -n 2 | tr '\n' ' ')
  [ -n "$_se" ] || _se=$(printf '%s\n' "$1" | head -n 1)
  printf '%s' "${_se% }" | tr -d '{}'
}
HINT='py-spy needs ptrace: give the debug container the SYS_PTRACE capability (kubectl debug --profile=sysadmin or general) and run it as root or as the target'"'"'s user'

# --- Per process ----------------------------------------------------------------------
all_ok=true
count=0
[ -z "$PIDS" ] || kd_timeout_init # once here, not in each $(kd_timeout ...) below
for pid in $PIDS; do
  count=$((count + 1))
  if [ ! -d "/proc/$pid" ]; then
    all_ok=false
    emit_check stack_dump "$pid" false "no process $pid" '"tool":"","threads":[],"truncated":false'
    continue
  fi
  if ! have py-spy; then
    all_ok=false
    emit_check stack_dump "$pid" false "py-spy is not in the debug image: use an image with py-spy (pip install py-spy; its binary is static)" \
      '"tool":"","threads":[],"truncated":false'
    continue
  fi
  # 16 MiB is far more than any sane dump; head keeps a runaway one bounded.
  out=$(kd_timeout "$KD_PYTHON_TIMEOUT" py-spy dump --pid "$pid" --json 2>&1 | head -c 16777216)
  # The exit status of a pipeline is head's: look at the output instead.
  case $out in
    '['*) ;;
    *)
      all_ok=false
      why=$(spy_error "$out")
      [ -n "$why" ] || why="py-spy timed out after ${KD_PYTHON_TIMEOUT}s or printed nothing"
      emit_check stack_dump "$pid" false "py-spy could not dump pid $pid: $why; $HINT" '"tool":"py-spy","threads":[],"truncated":false'
      continue
      ;;
  esac
  parse_dump "$out"
  truncated=false
  detail="$NTHREADS threads, $NFRAMES frames"
  if [ "$KEPT" -lt "$NTHREADS" ]; then
    truncated=true
    detail="$detail (only the first $KEPT threads kept)"
  fi
  ok=true
  if [ "$NTHREADS" = 0 ]; then
    ok=false
    all_ok=false
    detail="py-spy found no Python threads in pid $pid"
  fi
  emit_check stack_dump "$pid" "$ok" "$detail" "\"tool\":\"py-spy\",\"threads\":[$THREADS],\"truncated\":$truncated"
done

if [ "$count" = 0 ]; then
  emit_check summary python false "no python process found (is the debug container's targetContainerName set, and does the target run Python?)" '"count":0'
else
  emit_check summary python "$all_ok" "$count Python processes" "\"count\":$count"
fi
exit 0
