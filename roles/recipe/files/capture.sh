# shellcheck shell=sh
# kubedebug.ephemeral recipe "capture": a bounded packet capture with tcpdump in the
# target pod's network namespace (every container of a pod shares it), returned as a
# base64 pcap in one JSON line. Ends with one summary line.
#
#   capture [--duration SECONDS] [--count N] [--max-bytes N] [--interface IF] [--] [FILTER...]
#
#   --duration SECONDS  stop capturing after this long (default 10, at most 300)
#   --count N           stop after N packets (default 1000)
#   --max-bytes N       a pcap larger than this is not returned (default 5242880, 5 MiB)
#   --interface IF      the interface to capture on (default any)
#   FILTER              a tcpdump (pcap-filter) expression; the remaining words, joined
#                       with spaces (default: none, every packet)
#
# Lines:
#   {"check":"capture","target":IF,"ok":true,"detail":"N packets captured","packets":N,
#    "size":N,"sha256":S,"pcap_base64":S,"truncated":false,"filter":S}
#   {"check":"capture","target":IF,"ok":false,"detail":S,...,"pcap_base64":null,...}
#      tcpdump missing, the filter or the interface refused (detail: tcpdump's message),
#      or the pcap larger than --max-bytes (then "truncated":true, size and sha256 of the
#      whole capture, no content)
#   {"check":"summary","target":"capture","ok":B,"detail":S,"count":1}
#
# Needs tcpdump (and the NET_RAW/NET_ADMIN capabilities: the netadmin profile), timeout,
# sha256sum, base64 and mktemp, as in nicolaka/netshoot. Runs after prelude.sh (json_str,
# json_num, emit_check, have, kd_isnum, kd_nozeros, kd_timeout) in any POSIX sh (dash,
# bash, busybox ash).
# No Jinja markers (brace-hash, brace-percent, double braces) anywhere in this file:
# the roles pass it through Ansible variables.

# --- Arguments ------------------------------------------------------------------------
usage='usage: capture [--duration SECONDS] [--count N] [--max-bytes N] [--interface IF] [--] [FILTER...]'
bad_args() {
  emit_check args capture false "$1 ($usage)"
  emit_check summary capture false "bad arguments" '"count":0'
  exit 2
}
duration=10
count=1000
max_bytes=5242880
interface=any
opts=true
_n=$#
while [ "$_n" -gt 0 ]; do
  _a=$1
  shift
  _n=$((_n - 1))
  if [ "$opts" = true ]; then
    _opt='' _val=''
    case $_a in
      --duration | --count | --max-bytes | --interface)
        [ "$_n" -gt 0 ] || bad_args "$_a needs a value"
        _opt=$_a _val=$1
        shift
        _n=$((_n - 1))
        ;;
      --duration=* | --count=* | --max-bytes=* | --interface=*) _opt=${_a%%=*} _val=${_a#*=} ;;
      --)
        opts=false
        continue
        ;;
      -?*) bad_args "unknown option: $_a" ;;
      *) opts=false ;; # the filter starts here
    esac
    if [ -n "$_opt" ]; then
      case $_opt in
        --interface)
          case $_val in
            '' | -* | *[!A-Za-z0-9._:@-]*) bad_args "--interface wants an interface name, not: $_val" ;;
          esac
          interface=$_val
          ;;
        *)
          kd_isnum "$_val" || bad_args "$_opt wants a number, not: $_val"
          _val=$(kd_nozeros "$_val")
          case $_opt in
            --duration) duration=$_val ;;
            --count) count=$_val ;;
            *) max_bytes=$_val ;;
          esac
          ;;
      esac
      continue
    fi
  fi
  set -- "$@" "$_a" # a filter word: rotate it to the end, keeping the order
done
if [ "$duration" -lt 1 ] || [ "$duration" -gt 300 ]; then bad_args "--duration must be between 1 and 300, not: $duration"; fi
[ "$count" -ge 1 ] || bad_args "--count must be at least 1"
[ "$max_bytes" -ge 1 ] || bad_args "--max-bytes must be at least 1"
filter="$*"

# fail DETAIL: the capture line for a capture that could not run, and the summary.
fail() {
  emit_check capture "$interface" false "$1" \
    "\"packets\":null,\"size\":null,\"sha256\":null,\"pcap_base64\":null,\"truncated\":false,\"filter\":$(json_str "$filter")"
  emit_check summary capture false "capture failed: $1" '"count":1'
  exit 0
}

have tcpdump || fail "no tcpdump in the debug image (use one that has it, e.g. docker.io/nicolaka/netshoot)"
for _t in sha256sum base64; do
  have "$_t" || fail "no $_t in the debug image"
done

# --- Capture ----------------------------------------------------------------------------
dir=$(mktemp -d 2>/dev/null) || dir=''
if [ -z "$dir" ] || ! [ -d "$dir" ]; then
  dir=${TMPDIR:-/tmp}/kd-capture.$$
  (umask 077 && mkdir "$dir") || fail "cannot create a temporary directory in ${TMPDIR:-/tmp}"
fi
chmod 700 "$dir"
trap 'rm -rf "$dir"' EXIT
trap 'exit 1' HUP INT TERM
pcap=$dir/capture.pcap
errs=$dir/tcpdump.err

# -U writes each packet as it comes, so the file is whole when kd_timeout stops tcpdump.
# The filter is passed only when given: tcpdump treats the words after the options as
# one expression. It follows "--": tcpdump's getopt permutes its arguments, and would
# take a filter such as "-w /etc/passwd" or "-z cmd" for options.
set -- -i "$interface" -c "$count" -U -w "$pcap"
[ -z "$filter" ] || set -- "$@" -- "$filter"
kd_timeout "$duration" tcpdump "$@" 2>"$errs" </dev/null

# No pcap (or not even its 24-byte header): tcpdump refused the filter, the interface
# or the capabilities before capturing. Its last "tcpdump: ..." line says why.
_size=$(wc -c <"$pcap" 2>/dev/null) || _size=''
_size=${_size##* } # busybox wc pads with spaces
if ! kd_isnum "$_size" || [ "$_size" -lt 24 ]; then
  _msg=$(grep -i 'tcpdump:' "$errs" | grep -iv 'listening on' | tail -n 1)
  [ -n "$_msg" ] || _msg=$(grep -v '^ *$' "$errs" | tail -n 1)
  _msg=${_msg#tcpdump: }
  fail "tcpdump failed${_msg:+: $_msg}"
fi

# Packets: one line each when the pcap is read back; else tcpdump's own summary.
packets=$(tcpdump -n -r "$pcap" 2>/dev/null | wc -l) || packets=''
packets=${packets##* }
if ! kd_isnum "$packets"; then
  packets=$(sed -n 's/^\([0-9][0-9]*\) packets\{0,1\} captured.*/\1/p' "$errs" | tail -n 1)
fi
kd_isnum "$packets" || packets=''

sha=$(sha256sum <"$pcap") && sha=${sha%% *}
case $sha in
  '' | *[!0-9a-f]*) _jsha=null ;;
  *) _jsha="\"$sha\"" ;;
esac
_head="\"packets\":$(json_num "$packets"),\"size\":$_size,\"sha256\":$_jsha"

if [ "$_size" -gt "$max_bytes" ]; then
  _detail="${packets:-?} packets captured, but the pcap ($_size bytes) exceeds --max-bytes $max_bytes: not returned (narrow the filter, lower --count or --duration)"
  emit_check capture "$interface" false "$_detail" \
    "$_head,\"pcap_base64\":null,\"truncated\":true,\"filter\":$(json_str "$filter")"
  emit_check summary capture false "$_detail" '"count":1'
  exit 0
fi

# base64 wraps lines (76 columns in GNU and busybox): drop the newlines. Printed as it
# comes, not held in a variable: the line may be several MiB.
_detail="${packets:-?} packets captured"
printf '{"check":"capture","target":%s,"ok":true,"detail":%s,%s,"pcap_base64":"' \
  "$(json_str "$interface")" "$(json_str "$_detail")" "$_head"
base64 <"$pcap" | tr -d '\n'
printf '","truncated":false,"filter":%s}\n' "$(json_str "$filter")"
emit_check summary capture true "$_detail on $interface${filter:+ ($filter)}" '"count":1'
exit 0
