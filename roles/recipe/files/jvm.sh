# shellcheck shell=sh
# kubedebug.ephemeral recipe "jvm": thread dump and heap histogram of the target
# container's JVMs, from a debug container that shares its process namespace
# (targetContainerName) and ships a JDK (jcmd) or jattach.
#
#   jvm [--pid N] [--max-bytes N] [--no-histogram]
#
#   --pid N         only this process, if it is a JVM (default: every java process of the target: its
#                   /proc/<pid>/exe or argv[0] is named java, or it has libjvm.so
#                   mapped; this script and its children are left out as in the
#                   processes recipe)
#   --max-bytes N   keep at most N bytes of each thread dump (default 262144)
#   --no-histogram  skip GC.class_histogram, which forces a full (stop-the-world)
#                   garbage collection in the target JVM to count live objects only
#
# Lines, per JVM:
#   {"check":"thread_dump","target":"<pid>","ok":B,"detail":S,"threads":N,"deadlocks":N,
#    "dump":S,"truncated":B,"tool":"jcmd"|"jattach"|""}
#      jcmd <pid> Thread.print, else jattach <pid> threaddump; ok is false when neither
#      tool exists, when the attach fails (another user, -XX:+DisableAttachMechanism,
#      /tmp not shared...) and when the dump reports deadlocks. threads counts the
#      thread headers (Java and VM threads) of the whole dump, before truncation.
#   {"check":"heap_histogram","target":"<pid>","ok":B,"detail":S,"tool":S,
#    "top":[{"rank":N,"instances":N,"bytes":N,"class":S,"module":S}...],
#    "total_instances":N|null,"total_bytes":N|null}
#      the first 20 rows of jcmd <pid> GC.class_histogram (jattach <pid> inspectheap).
#   {"check":"summary","target":"jvm","ok":B,"detail":"N JVMs","count":N}
#      ok is false when no JVM was found or any line above is not ok.
#
# KD_JVM_TIMEOUT (environment): seconds before jcmd/jattach is killed, 1 to 600
# (default 60). Runs after prelude.sh (json_str, json_num, emit_check, have, kd_isnum,
# kd_target_pids, kd_timeout) in any POSIX sh. Besides jcmd or jattach it needs
# grep, sed, head and wc.
# No Jinja markers (brace-hash, brace-percent, double braces) anywhere in this file:
# the roles pass it through Ansible variables.

case "${KD_JVM_TIMEOUT:-}" in
  [1-9] | [1-9][0-9] | [1-5][0-9][0-9] | 600) ;;
  *) KD_JVM_TIMEOUT=60 ;;
esac
MAX_TOP=20

# --- Arguments ------------------------------------------------------------------------
USAGE='usage: jvm [--pid N] [--max-bytes N] [--no-histogram]'
bad_args() {
  emit_check args jvm false "$1 ($USAGE)"
  emit_check summary jvm false "bad arguments" '"count":0'
  exit 2
}
only_pid=''
max_bytes=262144
histogram=true
while [ $# -gt 0 ]; do
  case $1 in
    --pid)
      if [ $# -lt 2 ] || ! kd_isnum "$2"; then bad_args "--pid needs a process id"; fi
      only_pid=$2
      shift
      ;;
    --max-bytes)
      if [ $# -lt 2 ] || ! kd_isnum "$2" || [ "$2" -eq 0 ]; then bad_args "--max-bytes needs a positive number"; fi
      max_bytes=$2
      shift
      ;;
    --no-histogram) histogram=false ;;
    *) bad_args "unknown argument: $1" ;;
  esac
  shift
done

# --- Finding JVMs ---------------------------------------------------------------------
# is_java PID: its executable or argv[0] is named java, or libjvm.so is mapped (custom
# launchers, embedded JVMs).
is_java() {
  _exe=$(readlink "/proc/$1/exe")
  case ${_exe##*/} in
    java | 'java (deleted)') return 0 ;;
  esac
  _argv0=$(tr '\000' '\n' <"/proc/$1/cmdline" | head -n 1)
  case ${_argv0##*/} in
    java) return 0 ;;
  esac
  grep -q '/libjvm\.so' "/proc/$1/maps"
}

if [ -n "$only_pid" ]; then
  PIDS=$only_pid
else
  kd_target_pids is_java
  PIDS=$KD_PIDS
fi

# --- Per JVM --------------------------------------------------------------------------
# share_attach_socket PID: JDKs before 23 (JDK-8327114) look for the attach socket of a JVM
# whose pid is the same in our PID namespace (we share the target's) in our own /tmp, while
# the JVM creates it in its /tmp, which we see as /proc/PID/root/tmp: a symlink lets jcmd
# find it. Only when the target's root is not ours, or the link would point at itself.
share_attach_socket() {
  _sa_link=/tmp/.java_pid$1
  if [ -e "$_sa_link" ] || [ -L "$_sa_link" ]; then return 0; fi
  _sa_root=$(kd_root_id "$1")
  [ -n "$_sa_root" ] && [ "$_sa_root" != "$(kd_root_id self)" ] || return 0
  ln -s "/proc/$1/root/tmp/.java_pid$1" "$_sa_link"
}

# attach_error OUTPUT: a one-line reason from jcmd/jattach output (the exception line).
attach_error() {
  _ae=$(printf '%s\n' "$1" | grep -E 'Exception|Error|[Uu]nable|[Cc]ould not|[Pp]ermission|denied' | head -n 1)
  [ -n "$_ae" ] || _ae=$(printf '%s\n' "$1" | grep -v '^[0-9]*:$' | head -n 1)
  printf '%s' "$_ae"
}
HINT='the debug container must run as the JVM'"'"'s user (or root) and see its /tmp through /proc/<pid>/root; a JVM started with -XX:+DisableAttachMechanism cannot be attached'

all_ok=true
count=0
[ -z "$PIDS" ] || kd_timeout_init # once here, not in each $(kd_timeout ...) below
for pid in $PIDS; do
  count=$((count + 1))
  if [ ! -d "/proc/$pid" ]; then
    all_ok=false
    emit_check thread_dump "$pid" false "no process $pid" '"threads":0,"deadlocks":0,"dump":"","truncated":false,"tool":""'
    continue
  fi
  # jcmd signals (SIGQUIT) a process it cannot attach to, which kills most non-JVMs.
  if [ -n "$only_pid" ] && ! is_java "$pid"; then
    all_ok=false
    emit_check thread_dump "$pid" false "pid $pid is not a JVM (its executable is not java and it has no libjvm.so mapped): not attaching" \
      '"threads":0,"deadlocks":0,"dump":"","truncated":false,"tool":""'
    continue
  fi

  # Thread dump.
  tool=''
  if have jcmd; then
    tool=jcmd
    share_attach_socket "$pid"
    out=$(kd_timeout "$KD_JVM_TIMEOUT" jcmd "$pid" Thread.print 2>&1)
    rc=$?
  elif have jattach; then
    tool=jattach
    out=$(kd_timeout "$KD_JVM_TIMEOUT" jattach "$pid" threaddump 2>&1)
    rc=$?
  else
    rc=127
    out=''
  fi
  if [ -z "$tool" ]; then
    all_ok=false
    emit_check thread_dump "$pid" false "neither jcmd nor jattach is in the debug image: use a JDK image (such as eclipse-temurin:21-jdk) or one with jattach" \
      '"threads":0,"deadlocks":0,"dump":"","truncated":false,"tool":""'
  elif [ "$rc" != 0 ] || ! printf '%s\n' "$out" | grep -q '^Full thread dump'; then
    all_ok=false
    if kd_timed_out "$rc"; then
      why="$tool timed out after ${KD_JVM_TIMEOUT}s"
    else
      why="$tool could not attach to pid $pid (exit $rc): $(attach_error "$out")"
    fi
    emit_check thread_dump "$pid" false "$why; $HINT" \
      "\"threads\":0,\"deadlocks\":0,\"dump\":$(json_str "$(printf '%s' "$out" | head -c 4096)"),\"truncated\":false,\"tool\":\"$tool\""
  else
    if [ "$tool" = jattach ]; then
      # jattach prints "Connected to remote JVM" and "Response code = 0" first.
      out=$(printf '%s\n' "$out" | sed -e '/^Connected to remote JVM$/d' -e '/^JVM response code = /d' -e '/^Response code = /d')
    fi
    threads=$(printf '%s\n' "$out" | grep -c '^".*" .*nid=')
    deadlocks=$(printf '%s\n' "$out" | sed -n 's/^Found \([0-9][0-9]*\) deadlocks\{0,1\}\.$/\1/p' | head -n 1)
    kd_isnum "$deadlocks" || deadlocks=$(printf '%s\n' "$out" | grep -c '^Found one .*deadlock:$')
    kd_isnum "$threads" || threads=0
    kd_isnum "$deadlocks" || deadlocks=0
    truncated=false
    size=$(printf '%s' "$out" | wc -c)
    size=$((size + 0))
    if [ "$size" -gt "$max_bytes" ]; then
      out=$(printf '%s' "$out" | head -c "$max_bytes")
      truncated=true
    fi
    ok=true
    detail="$threads threads"
    if [ "$deadlocks" -gt 0 ]; then
      ok=false
      all_ok=false
      detail="$detail, $deadlocks deadlock(s) found"
    fi
    [ "$truncated" = true ] && detail="$detail (dump truncated to $max_bytes of $size bytes)"
    emit_check thread_dump "$pid" "$ok" "$detail" \
      "\"threads\":$threads,\"deadlocks\":$deadlocks,\"dump\":$(json_str "$out"),\"truncated\":$truncated,\"tool\":\"$tool\""
  fi

  # Heap histogram.
  [ "$histogram" = true ] || continue
  if [ -z "$tool" ]; then
    emit_check heap_histogram "$pid" false "neither jcmd nor jattach is in the debug image" '"tool":"","top":[],"total_instances":null,"total_bytes":null'
    continue
  fi
  if [ "$tool" = jcmd ]; then
    out=$(kd_timeout "$KD_JVM_TIMEOUT" jcmd "$pid" GC.class_histogram 2>&1)
  else
    out=$(kd_timeout "$KD_JVM_TIMEOUT" jattach "$pid" inspectheap 2>&1)
  fi
  rc=$?
  top=''
  rows=0
  total_i='' total_b=''
  _ifs=$IFS
  while IFS=' 	' read -r _num _inst _bytes _class _module; do
    case $_num in
      Total) total_i=$_inst total_b=$_bytes; continue ;;
      *:) ;;
      *) continue ;;
    esac
    _num=${_num%:}
    kd_isnum "$_num" && kd_isnum "$_inst" && kd_isnum "$_bytes" && [ -n "$_class" ] || continue
    [ "$rows" -lt "$MAX_TOP" ] || continue
    _module=${_module#(}
    _module=${_module%)}
    top="$top${top:+,}{\"rank\":$_num,\"instances\":$_inst,\"bytes\":$_bytes,\"class\":$(json_str "$_class"),\"module\":$(json_str "$_module")}"
    rows=$((rows + 1))
  done <<EOF
$out
EOF
  IFS=$_ifs
  if [ "$rc" = 0 ] && [ "$rows" -gt 0 ]; then
    emit_check heap_histogram "$pid" true "top $rows classes by bytes (live objects, after a full GC)" \
      "\"tool\":\"$tool\",\"top\":[$top],\"total_instances\":$(json_num "$total_i"),\"total_bytes\":$(json_num "$total_b")"
  else
    all_ok=false
    if kd_timed_out "$rc"; then
      why="$tool timed out after ${KD_JVM_TIMEOUT}s"
    elif [ "$rc" = 0 ]; then
      why="no histogram rows in the $tool output: $(attach_error "$out")"
    else
      why="$tool could not attach to pid $pid (exit $rc): $(attach_error "$out")"
    fi
    emit_check heap_histogram "$pid" false "$why" "\"tool\":\"$tool\",\"top\":[],\"total_instances\":null,\"total_bytes\":null"
  fi
done

if [ "$count" = 0 ]; then
  emit_check summary jvm false "no java process found (is the debug container's targetContainerName set, and does the target run a JVM?)" '"count":0'
else
  emit_check summary jvm "$all_ok" "$count JVMs" "\"count\":$count"
fi
exit 0
