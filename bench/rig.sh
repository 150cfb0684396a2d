# Sourced by bench/compare_anchor.sh and bench/profile_path.sh: the set-up they share, on
# tests/support/testbed.sh (bench/rr_timeline.sh takes only rig_ports). With SRC set and
# BUILD_ARG the build directory given (default $SRC/build):
#
#   rig_init PREFIX          BUILD, TB_BIN, the Go reference built and named (goref/select.sh),
#                            tb_init PREFIX (work dir $TB_DIR, cleanup on exit, root only)
#   rig_peer PEER_PORT T_PORT
#                            a stock wireguard-go peer 100.64.0.2 (tb_peer "peer") serving the
#                            reference's httpsrv on 100.64.0.2:8000, with the reference's 7 MiB
#                            socket buffers (or nothing compares); tunless as its peer
#                            100.64.0.1 listening on T_PORT: $TB_DIR/t.conf
#   rig_pair_conf N1_PORT N2_PORT
#                            two tunless nodes on this host, 100.65.0.1 and .2, each the other's
#                            peer: $TB_DIR/n1.conf and n2.conf
#   rig_host_srv PORT        the reference's httpsrv on 127.0.0.1:PORT (what node 2 publishes)
#   rig_node2 SRV_PORT [WRAP...]   node 2 in the background, publishing 127.0.0.1:SRV_PORT as
#                            100.65.0.2:8000; NODE2_PID (WRAP...: a command to run it under)
#   rig_node1 PROXY [WRAP...]      node 1 in the background, its SOCKS5 proxy on PROXY; NODE1_PID
#   rig_warm PROXY TARGET TRIES MAX_TIME   GETs through the proxy (each up to MAX_TIME s) until
#                            one works: the handshake and the first connection are not part of
#                            what is measured
#   rig_ticks PID            its CPU time (user + system) in clock ticks
#   rig_ports                compare_anchor.sh's ports, which rr_timeline.sh captures on: UDP
#                            PEER_PORT, T_PORT (tunless), A_PORT (the reference), N1_PORT and
#                            N2_PORT (the pair); TCP T_PROXY_PORT, A_PROXY_PORT, N_PROXY_PORT
#                            (the proxies' listeners) and SRV_PORT (the host service)

rig_ports() {
  PEER_PORT=29871 T_PORT=29872 A_PORT=29873 N1_PORT=29874 N2_PORT=29875
  T_PROXY_PORT=18281 A_PROXY_PORT=18282 N_PROXY_PORT=18283 SRV_PORT=18284
}

rig_init() {
  BUILD=$(cd "${BUILD_ARG:-$SRC/build}" && pwd)
  TB_BIN=$BUILD/tunless
  . "$SRC/bench/goref/select.sh"
  . "$SRC/tests/support/testbed.sh"
  tb_init "$1"
}

rig_peer() {
  local peer_port=$1 t_port=$2 t_key t_pub
  tb_peer peer "$peer_port" 100.64.0.2/10
  t_key=$("$TB_BIN" genkey); t_pub=$(echo "$t_key" | "$TB_BIN" pubkey)
  tb_peer_allow peer "$t_pub" 100.64.0.1/32 "127.0.0.1:$t_port"
  tb_bg "$TB_NS_peer" "${GOREF_HTTPSRV[@]}" -http 100.64.0.2:8000
  tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000
  "$GOREF_SOCKBUF" -pid "$TB_WGPID_peer" >/dev/null
  tb_tunless_conf "$TB_DIR/t.conf" "$t_key" 100.64.0.1/32 "$t_port" "$TB_PUB_peer" \
    "127.0.0.1:$peer_port" 100.64.0.0/10
}

rig_pair_conf() {
  local n1_port=$1 n2_port=$2 n1_key n1_pub n2_key n2_pub
  n1_key=$("$TB_BIN" genkey); n1_pub=$(echo "$n1_key" | "$TB_BIN" pubkey)
  n2_key=$("$TB_BIN" genkey); n2_pub=$(echo "$n2_key" | "$TB_BIN" pubkey)
  tb_tunless_conf "$TB_DIR/n1.conf" "$n1_key" 100.65.0.1/32 "$n1_port" "$n2_pub" \
    "127.0.0.1:$n2_port" 100.65.0.2/32
  tb_tunless_conf "$TB_DIR/n2.conf" "$n2_key" 100.65.0.2/32 "$n2_port" "$n1_pub" \
    "127.0.0.1:$n1_port" 100.65.0.1/32
}

rig_host_srv() {
  tb_bg - "${GOREF_HTTPSRV[@]}" -http "127.0.0.1:$1"
  tb_wait_tcp - 127.0.0.1 "$1"
}

rig_node2() {
  local srv_port=$1; shift
  "$@" "$TB_BIN" up --config "$TB_DIR/n2.conf" --proxy off --state-dir "$TB_DIR/state-n2" \
    --publish "8000=127.0.0.1:$srv_port" --log-level warn > "$TB_DIR/node2.log" 2>&1 &
  NODE2_PID=$!; TB_PIDS+=("$NODE2_PID")
}

rig_node1() {
  local proxy=$1; shift
  "$@" "$TB_BIN" up --config "$TB_DIR/n1.conf" --proxy "$proxy" --state-dir "$TB_DIR/state-n1" \
    --log-level warn > "$TB_DIR/node1.log" 2>&1 &
  NODE1_PID=$!; TB_PIDS+=("$NODE1_PID")
}

rig_warm() {
  local proxy=$1 target=$2 tries=$3 max_time=$4 i
  for i in $(seq "$tries"); do
    curl -s -o /dev/null --max-time "$max_time" -x "socks5://$proxy" "http://$target/zero?n=1000" && return
    sleep 0.25
  done
}

rig_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
