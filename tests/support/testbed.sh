# Sourced by integration tests: real wireguard-go peers inside network namespaces.
#
#   tb_init PREFIX               work dir in $TB_DIR, cleanup on exit; skips (77) unless root
#   tb_peer NAME PORT ADDR...    wireguard-go listening on 127.0.0.1:PORT (root namespace), its
#                                interface moved into netns "$PREFIX-NAME" with the addresses
#                                given (CIDR); sets TB_PUB_<NAME>, TB_KEY_<NAME> (key file),
#                                TB_NS_<NAME>, TB_IF_<NAME>, TB_WGPID_<NAME> (wireguard-go's pid);
#                                with TB_WG_NETNS=NS set, wireguard-go (its UDP socket on
#                                127.0.0.1:PORT) runs inside namespace NS instead of the root one
#   tb_peer_allow NAME PUB ALLOWED [ENDPOINT] [PSK_FILE]   wg set ... peer PUB
#   tb_ns NAME CMD...            run CMD inside the peer's namespace
#   tb_bg NAME CMD...            start CMD in the background (optionally inside a namespace; NAME "-"
#                                for the root namespace); its pid is killed at cleanup
#   tb_wait_tcp NS HOST PORT     wait until something listens (NS "-" for the root namespace)
#   tb_tunless_conf FILE KEY ADDR PORT PEER_PUB ENDPOINT ALLOWED
#                                a tunless config with one interface and one peer
#   tb_tunless_state DIR PORT    a state directory for a node started without a file (keyless),
#                                its key and UDP port made in advance, owned by nobody; sets
#                                TB_NODE_PUB (needs TB_BIN)
#
# Only loopback and the namespaces made here are ever sent traffic. Cleanup kills only the
# processes started here, by pid, and deletes only the namespaces made here.

TB_PIDS=()
TB_NETNS=()

tb_init() {
  TB_PREFIX=$1
  if [ "$(id -u)" != 0 ]; then
    echo "skip: needs root for network namespaces"
    exit 77
  fi
  for tool in wireguard-go wg ip; do
    command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
  done
  TB_DIR=$(mktemp -d "/tmp/tunless-$TB_PREFIX-XXXXXX")
  chmod 755 "$TB_DIR"
  trap tb_cleanup EXIT
  # Leftovers of an earlier run that was killed hard (same prefix = same test).
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$TB_PREFIX-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}

tb_cleanup() {
  local rc=$?
  local pid
  for pid in "${TB_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${TB_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  local ns
  for ns in "${TB_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -d "$TB_DIR" ]; then
    echo "--- logs in $TB_DIR:"
    local f
    for f in "$TB_DIR"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
  fi
  rm -rf "$TB_DIR"
  exit "$rc"
}

tb_bg() {
  local ns=$1; shift
  if [ "$ns" = "-" ]; then
    "$@" &
  else
    ip netns exec "$ns" "$@" &
  fi
  TB_PIDS+=($!)
  TB_LAST_PID=$!
}

tb_peer() {
  local name=$1 port=$2; shift 2
  local ns="$TB_PREFIX-$name" ifname="${TB_PREFIX:0:8}${#TB_NETNS[@]}"
  local key="$TB_DIR/$name.key"
  (umask 077 && wg genkey > "$key")
  local in_ns=() ip_ns=()
  [ -n "${TB_WG_NETNS:-}" ] && in_ns=(ip netns exec "$TB_WG_NETNS") ip_ns=(-n "$TB_WG_NETNS")
  # A socket left by a killed run would pass the wait below before this wireguard-go made its own.
  rm -f "/var/run/wireguard/$ifname.sock"
  WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 WG_PROCESS_FOREGROUND=1 \
    "${in_ns[@]}" wireguard-go "$ifname" > "$TB_DIR/wireguard-go-$name.log" 2>&1 &
  TB_PIDS+=($!)
  printf -v "TB_WGPID_$name" '%s' "$!"
  local i
  for i in $(seq 50); do [ -S "/var/run/wireguard/$ifname.sock" ] && break; sleep 0.1; done
  wg set "$ifname" private-key "$key" listen-port "$port"
  ip netns add "$ns"
  TB_NETNS+=("$ns")
  ip "${ip_ns[@]}" link set "$ifname" netns "$ns"
  local addr
  for addr in "$@"; do ip -n "$ns" addr add "$addr" dev "$ifname"; done
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$ifname" up
  printf -v "TB_PUB_$name" '%s' "$(wg pubkey < "$key")"
  printf -v "TB_KEY_$name" '%s' "$key"
  printf -v "TB_NS_$name" '%s' "$ns"
  printf -v "TB_IF_$name" '%s' "$ifname"
}

tb_peer_allow() {
  local name=$1 pub=$2 allowed=$3 endpoint=${4:-} psk=${5:-}
  local ns="$TB_PREFIX-$name" ifvar="TB_IF_$name"
  local args=(peer "$pub" allowed-ips "$allowed")
  [ -n "$endpoint" ] && args+=(endpoint "$endpoint")
  [ -n "$psk" ] && args+=(preshared-key "$psk")
  ip netns exec "$ns" wg set "${!ifvar}" "${args[@]}"
}

tb_ns() {
  local name=$1; shift
  ip netns exec "$TB_PREFIX-$name" "$@"
}

tb_wait_tcp() {
  local ns=$1 host=$2 port=$3 i
  for i in $(seq 100); do
    if [ "$ns" = "-" ]; then
      (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
    else
      ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null && return 0
    fi
    sleep 0.1
  done
  echo "nothing listens on $host:$port (netns $ns)"
  return 1
}

tb_tunless_conf() {
  local file=$1 key=$2 addr=$3 port=$4 peer_pub=$5 endpoint=$6 allowed=$7
  cat > "$file" <<CONF
[Interface]
PrivateKey = $key
Address = $addr
ListenPort = $port
[Peer]
PublicKey = $peer_pub
Endpoint = $endpoint
AllowedIPs = $allowed
CONF
  chmod 600 "$file"
}

tb_tunless_state() {
  local dir=$1 port=$2
  mkdir -p "$dir" && chmod 700 "$dir"
  (umask 077 && "$TB_BIN" genkey > "$dir/private.key" && echo "$port" > "$dir/listen-port")
  chown -R nobody "$dir"
  TB_NODE_PUB=$("$TB_BIN" pubkey < "$dir/private.key")
}
