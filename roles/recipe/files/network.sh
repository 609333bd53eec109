# shellcheck shell=sh
# kubedebug.ephemeral recipe "network": this pod's interfaces, routes and listening
# TCP sockets, then connectivity checks.
#
#   sh -c "<prelude.sh>\n<network.sh>" network [tcp:HOST:PORT | http://URL | https://URL]...
#
# Prints one JSON object per line (see roles/recipe/files/prelude.sh):
#   {"check":"interfaces","target":"/proc/net/dev","ok":..,"detail":..,"interfaces":[{"name","addresses","rx_bytes","tx_bytes","operstate"}..]}
#   {"check":"routes","target":"/proc/net/route","ok":..,"detail":..,"routes":[{"destination","gateway","iface","metric"}..]}
#   {"check":"listening","target":"/proc/net/tcp","ok":..,"detail":..,"sockets":[{"proto","address","port"}..]}
#   {"check":"tcp","target":"HOST:PORT","ok":..,"detail":..,"ms":N,"tool":..}
#   {"check":"http","target":URL,"ok":<2xx or 3xx>,"status":N|null,"ms":N,"detail":..,"tool":..}
#   {"check":"invalid","target":SPEC,"ok":false,"detail":..}                  (a spec it cannot parse)
#   {"check":"summary","target":"network","ok":<every line ok>,"detail":"N of M checks passed"}
# Check specs: tcp:HOST:PORT (tcp:[v6addr]:PORT), http://URL, https://URL; http:HOST/PATH
# and https:HOST/PATH are read as http://HOST/PATH and https://HOST/PATH. TCP uses nc -z
# (busybox's small nc: nc ... -e true), bash's /dev/tcp or busybox nc; HTTP uses curl or
# wget (redirects are not followed, so a 3xx is a pass). Every probe is killed after
# KD_NET_TIMEOUT seconds (default 5). Runs after prelude.sh (json_num, emit_check, have,
# now_ms, kd_clean, kd_jstr_var, kd_json_lines, kd_count_lines, kd_last_line, kd_timeout);
# needs only the prelude's sed and printf plus tr; writes no files.

# KD_NET_TIMEOUT (environment): seconds before a probe is killed, 1 to 60 (default 5).
# The tools' own timeouts are shorter, so that they report what they were waiting for.
case "${KD_NET_TIMEOUT:-}" in
  [1-9] | [1-5][0-9] | 60) ;;
  *) KD_NET_TIMEOUT=5 ;;
esac
KD_TOOL_TIMEOUT=$((KD_NET_TIMEOUT > 1 ? KD_NET_TIMEOUT - 1 : 1))
KD_CONNECT_TIMEOUT=$((KD_TOOL_TIMEOUT > 3 ? 3 : KD_TOOL_TIMEOUT))
# kd_jstr TEXT: TEXT as a JSON string, whatever it contains.
kd_jstr() {
  kd_jstr_var "$1"
  printf '%s' "$KD_J"
}

# Probed once here: the probes call kd_timeout inside $(...).
kd_timeout_init

# The kernel prints IPv4 addresses in /proc/net/{route,tcp,tcp6} as host-order words.
KD_BIG_ENDIAN=0
if have od; then
  case "$(printf 'AB' | od -An -tx2 2>/dev/null)" in *4142*) KD_BIG_ENDIAN=1 ;; esac
else
  case "$(uname -m 2>/dev/null)" in s390* | ppc | ppc64 | mips | mips64 | sparc* | m68k | hppa* | or1k) KD_BIG_ENDIAN=1 ;; esac
fi

# kd_hex_word WORD8: sets KD_HW to an 8-hex-digit host-order word as big-endian
# (network order) hex. (The decoders set variables: a $(...) per socket is slow.)
kd_hex_word() {
  if [ "$KD_BIG_ENDIAN" = 1 ]; then
    KD_HW=$1
    return
  fi
  _hw_r=$1
  _hw_a=${_hw_r%??????}
  _hw_r=${_hw_r#??}
  _hw_b=${_hw_r%????}
  _hw_r=${_hw_r#??}
  _hw_c=${_hw_r%??}
  _hw_d=${_hw_r#??}
  KD_HW=$_hw_d$_hw_c$_hw_b$_hw_a
}

# kd_v4 HEX8: sets KD_V4 to big-endian hex as a dotted quad.
kd_v4() {
  _v4_r=$1
  _v4_a=${_v4_r%??????}
  _v4_r=${_v4_r#??}
  _v4_b=${_v4_r%????}
  _v4_r=${_v4_r#??}
  _v4_c=${_v4_r%??}
  _v4_d=${_v4_r#??}
  KD_V4=$((0x$_v4_a)).$((0x$_v4_b)).$((0x$_v4_c)).$((0x$_v4_d))
}

# kd_prefix_len HEX8: sets KD_PL to the number of set bits in a netmask.
kd_prefix_len() {
  _pl_h=$1
  _pl_n=0
  while [ -n "$_pl_h" ]; do
    _pl_rest=${_pl_h#?}
    _pl_digit=${_pl_h%"$_pl_rest"}
    _pl_h=$_pl_rest
    _pl_v=$((0x$_pl_digit))
    while [ "$_pl_v" -gt 0 ]; do
      _pl_n=$((_pl_n + (_pl_v & 1)))
      _pl_v=$((_pl_v >> 1))
    done
  done
  KD_PL=$_pl_n
}

# kd_v6 HEX32: a big-endian IPv6 address in RFC 5952 form (::1, fe80::..., ::ffff:a.b.c.d).
kd_v6() {
  _v6_h=$(printf '%s' "$1" | tr 'A-F' 'a-f')
  _v6_groups=''
  _v6_i=0
  while [ "$_v6_i" -lt 8 ]; do
    _v6_rest=${_v6_h#????}
    _v6_g=${_v6_h%"$_v6_rest"}
    _v6_h=$_v6_rest
    while :; do
      case "$_v6_g" in 0?*) _v6_g=${_v6_g#0} ;; *) break ;; esac
    done
    _v6_groups="$_v6_groups $_v6_g"
    _v6_i=$((_v6_i + 1))
  done
  set -f
  # shellcheck disable=SC2086 # split into words on purpose (globbing is off)
  set -- $_v6_groups
  set +f
  if [ "$1$2$3$4$5" = 00000 ] && [ "$6" = ffff ]; then
    kd_v4 "$(printf '%04x%04x' "$((0x$7))" "$((0x$8))")"
    printf '::ffff:%s' "$KD_V4"
    return
  fi
  # The longest run of at least two zero groups (the first of equal runs) becomes "::".
  _v6_best=0
  _v6_best_len=0
  _v6_run=0
  _v6_run_len=0
  _v6_i=1
  for _v6_g in "$@"; do
    if [ "$_v6_g" = 0 ]; then
      [ "$_v6_run_len" -eq 0 ] && _v6_run=$_v6_i
      _v6_run_len=$((_v6_run_len + 1))
      if [ "$_v6_run_len" -gt "$_v6_best_len" ]; then
        _v6_best=$_v6_run
        _v6_best_len=$_v6_run_len
      fi
    else
      _v6_run_len=0
    fi
    _v6_i=$((_v6_i + 1))
  done
  [ "$_v6_best_len" -ge 2 ] || _v6_best=0
  _v6_out=''
  _v6_i=1
  _v6_sep=''
  for _v6_g in "$@"; do
    if [ "$_v6_best" -gt 0 ] && [ "$_v6_i" -ge "$_v6_best" ] && [ "$_v6_i" -lt $((_v6_best + _v6_best_len)) ]; then
      [ "$_v6_i" -eq "$_v6_best" ] && _v6_out="$_v6_out::" && _v6_sep=''
    else
      _v6_out="$_v6_out$_v6_sep$_v6_g"
      _v6_sep=':'
    fi
    _v6_i=$((_v6_i + 1))
  done
  printf '%s' "$_v6_out"
}

# kd_v6_host HEX32: /proc/net/tcp6's address (four host-order words) in RFC 5952 form.
kd_v6_host() {
  _vh_h=$1
  _vh_be=''
  while [ -n "$_vh_h" ]; do
    _vh_rest=${_vh_h#????????}
    kd_hex_word "${_vh_h%"$_vh_rest"}"
    _vh_be=$_vh_be$KD_HW
    _vh_h=$_vh_rest
  done
  kd_v6 "$_vh_be"
}

# kd_is_hex TEXT LENGTH: whether TEXT is LENGTH (2, 4, 8 or 32) hex digits. (No
# length expansion: the roles pass this file through Ansible, where a brace followed
# by a hash starts a Jinja comment.)
kd_is_hex() {
  case "$1" in '' | *[!0-9a-fA-F]*) return 1 ;; esac
  case "$2:$1" in
    2:?? | 4:???? | 8:???????? | 32:????????????????????????????????) return 0 ;;
  esac
  return 1
}

KD_ALL_OK=true
KD_CHECKS=0
KD_PASSED=0

# --- interfaces --------------------------------------------------------------------

# kd_addresses_of IFACE: IFACE's addresses (one a line) from KD_IP_ADDR or KD_IF_INET6.
kd_addresses_of() {
  if [ -n "$KD_IP_ADDR" ]; then
    printf '%s\n' "$KD_IP_ADDR" | while IFS= read -r _ao_line; do
      set -f
      # shellcheck disable=SC2086 # split into words on purpose (globbing is off)
      set -- $_ao_line
      set +f
      [ $# -ge 4 ] || continue
      _ao_name=${2%:}
      _ao_name=${_ao_name%%@*}
      case "$3" in inet | inet6) ;; *) continue ;; esac
      [ "$_ao_name" = "$KD_AO_IFACE" ] && printf '%s\n' "$4"
    done
  elif [ -n "$KD_IF_INET6" ]; then
    printf '%s\n' "$KD_IF_INET6" | while IFS= read -r _ao_line; do
      set -f
      # shellcheck disable=SC2086 # split into words on purpose (globbing is off)
      set -- $_ao_line
      set +f
      [ $# -ge 6 ] || continue
      [ "$6" = "$KD_AO_IFACE" ] || continue
      if ! kd_is_hex "$1" 32 || ! kd_is_hex "$3" 2; then continue; fi
      printf '%s/%d\n' "$(kd_v6 "$1")" "$((0x$3))"
    done
  fi
}

kd_interfaces() {
  KD_IP_ADDR=''
  KD_IF_INET6=''
  _if_source='ip -o addr'
  if have ip; then
    KD_IP_ADDR=$(kd_timeout "$KD_NET_TIMEOUT" ip -o addr 2>/dev/null)
  fi
  if [ -z "$KD_IP_ADDR" ]; then
    _if_source='/proc/net/if_inet6 (IPv6 only: no ip command)'
    [ -r /proc/net/if_inet6 ] && KD_IF_INET6=$(cat /proc/net/if_inet6 2>/dev/null)
  fi
  if [ ! -r /proc/net/dev ]; then
    KD_ALL_OK=false
    emit_check interfaces /proc/net/dev false '/proc/net/dev is missing or not readable' '"interfaces":[]'
    return
  fi
  _if_list=''
  _if_count=0
  _if_names=''
  while IFS= read -r _if_line || [ -n "$_if_line" ]; do
    case "$_if_line" in *:*) ;; *) continue ;; esac
    _if_name=${_if_line%%:*}
    _if_name=${_if_name#"${_if_name%%[! ]*}"}
    case "$_if_name" in '' | *'|'* | *' '*) continue ;; esac
    set -f
    # shellcheck disable=SC2086 # split into words on purpose (globbing is off)
    set -- ${_if_line#*:}
    set +f
    [ $# -ge 9 ] || continue
    _if_rx=$1
    _if_tx=$9
    KD_AO_IFACE=$_if_name
    _if_addrs=$(kd_addresses_of)
    _if_state=null
    if [ -r "/sys/class/net/$_if_name/operstate" ]; then
      _if_state=$(kd_jstr "$(cat "/sys/class/net/$_if_name/operstate" 2>/dev/null)")
    fi
    kd_jstr_var "$_if_name"
    _if_list="$_if_list${_if_list:+,}{\"name\":$KD_J,\"addresses\":$(kd_json_lines "$_if_addrs"),\"rx_bytes\":$(json_num "$_if_rx"),\"tx_bytes\":$(json_num "$_if_tx"),\"operstate\":$_if_state}"
    _if_count=$((_if_count + 1))
    _if_names="$_if_names${_if_names:+, }$_if_name"
  done </proc/net/dev
  emit_check interfaces /proc/net/dev true "$(kd_clean "$_if_count interface(s): $_if_names; addresses from $_if_source")" \
    "\"interfaces\":[$_if_list]"
}

# --- routes --------------------------------------------------------------------------

kd_routes() {
  if [ ! -r /proc/net/route ]; then
    KD_ALL_OK=false
    emit_check routes /proc/net/route false '/proc/net/route is missing or not readable' '"routes":[]'
    return
  fi
  _rt_list=''
  _rt_count=0
  _rt_default=''
  while IFS= read -r _rt_line || [ -n "$_rt_line" ]; do
    set -f
    # shellcheck disable=SC2086 # split into words on purpose (globbing is off)
    set -- $_rt_line
    set +f
    # Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
    [ $# -ge 8 ] || continue
    if ! kd_is_hex "$2" 8 || ! kd_is_hex "$3" 8 || ! kd_is_hex "$8" 8; then continue; fi
    kd_hex_word "$2"
    kd_v4 "$KD_HW"
    kd_prefix_len "$8"
    _rt_cidr=$KD_V4/$KD_PL
    kd_hex_word "$3"
    kd_v4 "$KD_HW"
    _rt_gw=$KD_V4
    kd_jstr_var "$1"
    _rt_list="$_rt_list${_rt_list:+,}{\"destination\":\"$_rt_cidr\",\"gateway\":\"$_rt_gw\",\"iface\":$KD_J,\"metric\":$(json_num "$7")}"
    _rt_count=$((_rt_count + 1))
    [ "$_rt_cidr" = 0.0.0.0/0 ] && [ -z "$_rt_default" ] && _rt_default="default via $_rt_gw dev $1"
  done </proc/net/route
  emit_check routes /proc/net/route true "$(kd_clean "$_rt_count IPv4 route(s); ${_rt_default:-no default route}")" \
    "\"routes\":[$_rt_list]"
}

# --- listening sockets -------------------------------------------------------------

# kd_listening_in FILE PROTO: JSON objects for FILE's LISTEN (0A) sockets, one a line.
kd_listening_in() {
  [ -r "$1" ] || return 0
  _ls_file=$1
  _ls_proto=$2
  while IFS= read -r _ls_line || [ -n "$_ls_line" ]; do
    case "$_ls_line" in *" 0A "*) ;; *) continue ;; esac
    set -f
    # shellcheck disable=SC2086 # split into words on purpose (globbing is off)
    set -- $_ls_line
    set +f
    [ $# -ge 4 ] && [ "$4" = 0A ] || continue
    _ls_hex=${2%:*}
    _ls_port=${2##*:}
    kd_is_hex "$_ls_port" 4 || continue
    if kd_is_hex "$_ls_hex" 8; then
      kd_hex_word "$_ls_hex"
      kd_v4 "$KD_HW"
      _ls_addr=$KD_V4
    elif kd_is_hex "$_ls_hex" 32; then
      _ls_addr=$(kd_v6_host "$_ls_hex")
    else
      continue
    fi
    printf '{"proto":"%s","address":"%s","port":%d}\n' "$_ls_proto" "$_ls_addr" "$((0x$_ls_port))"
  done <"$_ls_file"
}

# kd_unique_lines: stdin's non-empty lines, each once, in their first order.
kd_unique_lines() {
  # shellcheck disable=SC2153 # KD_NL is the prelude's newline, not a misspelled KD_PL
  _ul_seen=$KD_NL
  while IFS= read -r _ul_line; do
    [ -n "$_ul_line" ] || continue
    case "$_ul_seen" in *"$KD_NL$_ul_line$KD_NL"*) continue ;; esac
    _ul_seen="$_ul_seen$_ul_line$KD_NL"
    printf '%s\n' "$_ul_line"
  done
}

kd_listening() {
  if [ ! -r /proc/net/tcp ] && [ ! -r /proc/net/tcp6 ]; then
    KD_ALL_OK=false
    emit_check listening /proc/net/tcp false '/proc/net/tcp and /proc/net/tcp6 are missing or not readable' '"sockets":[]'
    return
  fi
  # One entry per address and port (SO_REUSEPORT sockets are listed once each).
  _ls_all=$({
    kd_listening_in /proc/net/tcp tcp
    kd_listening_in /proc/net/tcp6 tcp6
  } | kd_unique_lines)
  _ls_count=$(kd_count_lines "$_ls_all")
  _ls_list=$(printf '%s' "$_ls_all" | tr '\n' ',')
  emit_check listening /proc/net/tcp true "$_ls_count listening TCP socket(s)" "\"sockets\":[$_ls_list]"
}

# --- checks --------------------------------------------------------------------------

# kd_result CHECK TARGET OK DETAIL [EXTRA]: emit one check line and count it.
kd_result() {
  KD_CHECKS=$((KD_CHECKS + 1))
  if [ "$3" = true ]; then
    KD_PASSED=$((KD_PASSED + 1))
  else
    KD_ALL_OK=false
  fi
  emit_check "$1" "$(kd_clean "$2")" "$3" "$(kd_clean "$4")" "$5"
}

# kd_nc_probe NC... : sets PR_RC and PR_OUT for a connect to PR_HOST:PR_PORT with nc.
kd_nc_probe() {
  PR_OUT=$(kd_timeout "$KD_NET_TIMEOUT" "$@" -z -w "$KD_CONNECT_TIMEOUT" "$PR_HOST" "$PR_PORT" </dev/null 2>&1)
  PR_RC=$?
  PR_TOOL="$* -z"
  case "$PR_RC:$PR_OUT" in
    0:* | 124:* | 137:* | 143:*) ;;
    *[Ii]nvalid\ option* | *[Ii]llegal\ option* | *[Uu]nrecognized\ option* | *[Uu]nknown\ option* | *[Uu]sage:*)
      # busybox's small nc has no -z: connect, then run "true" instead of reading.
      PR_OUT=$(kd_timeout "$KD_NET_TIMEOUT" "$@" -w "$KD_CONNECT_TIMEOUT" "$PR_HOST" "$PR_PORT" -e true </dev/null 2>&1)
      PR_RC=$?
      PR_TOOL="$* -e true"
      ;;
  esac
}

kd_check_tcp() {
  _tc_spec=$1
  _tc_target=${_tc_spec#tcp:}
  PR_HOST=''
  PR_PORT=''
  _tc_bad=''
  case "$_tc_target" in
    '') _tc_bad='nothing after "tcp:"' ;;
    \[*\]:*)
      PR_HOST=${_tc_target%\]:*}
      PR_HOST=${PR_HOST#\[}
      PR_PORT=${_tc_target##*\]:}
      ;;
    *:*)
      PR_HOST=${_tc_target%:*}
      PR_PORT=${_tc_target##*:}
      ;;
    *) _tc_bad='no port' ;;
  esac
  if [ -z "$_tc_bad" ]; then
    case "$PR_HOST" in
      '') _tc_bad='no host' ;;
      -* | *[\ \	/]* | *\[* | *\]*) _tc_bad='the host is not a host name or address' ;;
    esac
  fi
  if [ -z "$_tc_bad" ]; then
    case "$PR_PORT" in
      '' | *[!0-9]*) _tc_bad='the port is not a number' ;;
      ??????*) _tc_bad='the port is out of range' ;;
      *) [ "$PR_PORT" -ge 1 ] && [ "$PR_PORT" -le 65535 ] || _tc_bad='the port is out of range' ;;
    esac
  fi
  if [ -n "$_tc_bad" ]; then
    kd_result invalid "$_tc_spec" false "invalid check \"$_tc_spec\": $_tc_bad (expected tcp:HOST:PORT or tcp:[IPV6]:PORT)"
    return
  fi
  _tc_start=$(now_ms)
  if have nc; then
    kd_nc_probe nc
  elif have bash; then
    PR_TOOL='bash /dev/tcp'
    # shellcheck disable=SC2016 # $1 and $2 are expanded by bash
    PR_OUT=$(kd_timeout "$KD_NET_TIMEOUT" bash -c 'exec 3<>"/dev/tcp/$1/$2"' kd-tcp "$PR_HOST" "$PR_PORT" </dev/null 2>&1)
    PR_RC=$?
  elif have busybox && busybox nc --help >/dev/null 2>&1; then
    kd_nc_probe busybox nc
  else
    PR_TOOL=''
    PR_RC=127
    PR_OUT='no TCP client in this image (nc, bash or busybox nc)'
  fi
  _tc_ms=$(($(now_ms) - _tc_start))
  _tc_tool=null
  [ -n "$PR_TOOL" ] && _tc_tool=$(kd_jstr "$PR_TOOL")
  if [ "$PR_RC" -eq 0 ]; then
    kd_result tcp "$_tc_target" true "connected" "\"ms\":$(json_num "$_tc_ms"),\"tool\":$_tc_tool"
  elif [ "$PR_RC" -eq 127 ] && [ -z "$PR_TOOL" ]; then
    kd_result tcp "$_tc_target" false "$PR_OUT" "\"ms\":$(json_num "$_tc_ms"),\"tool\":null"
  elif kd_timed_out "$PR_RC"; then
    kd_result tcp "$_tc_target" false "no connection within ${KD_NET_TIMEOUT}s (timed out)" "\"ms\":$(json_num "$_tc_ms"),\"tool\":$_tc_tool"
  else
    _tc_why=$(kd_last_line "$PR_OUT")
    kd_result tcp "$_tc_target" false "connect failed (exit $PR_RC)${_tc_why:+: $_tc_why}" \
      "\"ms\":$(json_num "$_tc_ms"),\"tool\":$_tc_tool"
  fi
}

# kd_wget_status: the last "HTTP/x.y NNN" status code in wget -S output on stdin.
kd_wget_status() {
  _ws_code=''
  while IFS= read -r _ws_line; do
    _ws_line=${_ws_line#"${_ws_line%%[! 	]*}"}
    case "$_ws_line" in
      HTTP/*)
        set -f
        # shellcheck disable=SC2086 # split into words on purpose (globbing is off)
        set -- $_ws_line
        set +f
        case "$2" in [0-9][0-9][0-9]) _ws_code=$2 ;; esac
        ;;
    esac
  done
  printf '%s' "$_ws_code"
}

# kd_wget_error: wget's last message on stdin that is not a response header.
kd_wget_error() {
  _we_msg=''
  while IFS= read -r _we_line; do
    case "$_we_line" in '' | ' '* | '	'*) continue ;; esac
    _we_msg=$_we_line
  done
  printf '%s' "$_we_msg"
}

# kd_http_wget WGET...: sets HG_STATUS, HG_ERR, HG_RC and HG_TOOL for KD_URL using
# wget (GNU wget or wget2, or busybox's).
kd_http_wget() {
  case "$("$@" --version 2>&1 </dev/null)" in
    *GNU\ Wget*)
      HG_TOOL="$*"
      HG_OUT=$(kd_timeout "$KD_NET_TIMEOUT" "$@" -q -S -O /dev/null -T "$KD_TOOL_TIMEOUT" -t 1 --max-redirect=0 "$KD_URL" </dev/null 2>&1)
      HG_RC=$?
      ;;
    *)
      # busybox wget: no -T (it crashes some builds), the outer timeout bounds it; it
      # follows redirects, so the status is the last response's.
      HG_TOOL="$*"
      [ "$1" = busybox ] || HG_TOOL="$* (busybox)"
      HG_OUT=$(kd_timeout "$KD_NET_TIMEOUT" "$@" -q -S -O /dev/null "$KD_URL" </dev/null 2>&1)
      HG_RC=$?
      ;;
  esac
  HG_STATUS=$(printf '%s\n' "$HG_OUT" | kd_wget_status)
  HG_ERR=$(printf '%s\n' "$HG_OUT" | kd_wget_error)
}

kd_check_http() {
  _hc_spec=$1
  KD_URL=''
  case "$_hc_spec" in
    http://* | https://*) KD_URL=$_hc_spec ;;
    http:*://* | https:*://*) KD_URL=${_hc_spec#*:} ;;
    http:*) KD_URL="http://${_hc_spec#http:}" ;;
    https:*) KD_URL="https://${_hc_spec#https:}" ;;
  esac
  case "$KD_URL" in
    http://* | https://*) ;;
    *) KD_URL='' ;;
  esac
  _hc_rest=${KD_URL#*://}
  case "$_hc_rest" in
    '' | /* | *[\ \	]*)
      kd_result invalid "$_hc_spec" false "invalid check \"$_hc_spec\": expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH"
      return
      ;;
  esac
  HG_STATUS=''
  HG_ERR=''
  HG_RC=0
  HG_TOOL=''
  _hc_start=$(now_ms)
  if have curl; then
    HG_TOOL=curl
    # --globoff: curl would expand {a,b} and [1-9] in a URL into several requests.
    HG_OUT=$(kd_timeout "$KD_NET_TIMEOUT" curl -sS --globoff -o /dev/null -w '\n%{http_code}' \
      --connect-timeout "$KD_CONNECT_TIMEOUT" --max-time "$KD_TOOL_TIMEOUT" "$KD_URL" </dev/null 2>&1)
    HG_RC=$?
    HG_STATUS=${HG_OUT##*"$KD_NL"}
    case "$HG_OUT" in
      *"$KD_NL"*) HG_ERR=$(kd_last_line "${HG_OUT%"$KD_NL"*}") ;;
      *) HG_ERR='' ;;
    esac
  elif have wget; then
    kd_http_wget wget
  elif have busybox && busybox wget --help >/dev/null 2>&1; then
    kd_http_wget busybox wget
  else
    HG_RC=127
    HG_ERR='no HTTP client in this image (curl, wget or busybox wget)'
  fi
  _hc_ms=$(($(now_ms) - _hc_start))
  case "$HG_STATUS" in
    [1-9][0-9][0-9]) ;;
    *) HG_STATUS='' ;;
  esac
  _hc_tool=null
  [ -n "$HG_TOOL" ] && _hc_tool=$(kd_jstr "$HG_TOOL")
  _hc_ok=false
  if [ -n "$HG_STATUS" ]; then
    case "$HG_STATUS" in [23]??) _hc_ok=true ;; esac
    _hc_detail="HTTP $HG_STATUS"
  elif kd_timed_out "$HG_RC"; then
    _hc_detail="no response within ${KD_NET_TIMEOUT}s (timed out)"
  else
    _hc_detail="request failed (exit $HG_RC)${HG_ERR:+: $HG_ERR}"
  fi
  _hc_status=null
  [ -n "$HG_STATUS" ] && _hc_status=$HG_STATUS
  # Key order as documented: check, target, ok, status, ms, detail, tool.
  KD_CHECKS=$((KD_CHECKS + 1))
  if [ "$_hc_ok" = true ]; then
    KD_PASSED=$((KD_PASSED + 1))
  else
    KD_ALL_OK=false
  fi
  printf '{"check":"http","target":%s,"ok":%s,"status":%s,"ms":%s,"detail":%s,"tool":%s}\n' \
    "$(kd_jstr "$KD_URL")" "$_hc_ok" "$_hc_status" "$(json_num "$_hc_ms")" "$(kd_jstr "$_hc_detail")" "$_hc_tool"
}

# --- main ----------------------------------------------------------------------------

kd_interfaces
kd_routes
kd_listening

for kd_spec in "$@"; do
  case "$kd_spec" in
    tcp:*) kd_check_tcp "$kd_spec" ;;
    http:* | https:*) kd_check_http "$kd_spec" ;;
    *) kd_result invalid "$kd_spec" false "invalid check \"$kd_spec\": expected tcp:HOST:PORT, http://URL or https://URL" ;;
  esac
done

emit_check summary network "$KD_ALL_OK" "$KD_PASSED of $KD_CHECKS checks passed"
