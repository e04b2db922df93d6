# Simulated hosts for the network benchmarks (sourced by scripts/bench-netem and
# scripts/bench-allreduce-netem): one network namespace per host, 10.232.0.I, and the gateway
# 10.232.0.254 in the root namespace, where a coordinator listens. Each host's outgoing link is
# shaped with tc netem (one-way delay and rate) on a veth pair to a bridge; kernels without netem
# (seen on this project's firecracker VMs) get netwire instead of the bridge (BENCH_NETEM_WIRE=1
# forces it; BENCH_NETEM_WIRE=tbf keeps the bridge and limits rates with tbf, skipping delays): a
# user-space wire with netem's delay and rate on every host's outgoing link, TUN devices in place
# of the veth pairs. The wire costs a little latency of its own, so `probe` measures the round
# trips of each configuration (netwire ping, 64 bytes and 1 MB, host 1 to host 2).
# Needs root and iproute2; sends nothing outside the namespaces it makes.
#   hosts_up N NETWIRE    make hosts 1..N (NETWIRE: the netwire executable)
#   shape DELAY_US RATE   shape every host's outgoing link
#   probe DIR             round trips under the current shape, into DIR/ping-{64,1m}.json
#   hosts_down            remove everything hosts_up made (call it from an EXIT trap)
#   host_ns I             the namespace of host I; host_device I: its device; gateway: the gateway

gateway=10.232.0.254
hosts_tag=$$
hosts_count=0
host_ns() { echo "rbn$hosts_tag-$1"; }
host_device() { echo "rbi$hosts_tag$1"; }

hosts_up() {
  hosts_count=$1 hosts_netwire=$2
  hosts_bridge=rbn$hosts_tag
  [ "$(id -u)" = 0 ] || { echo "simulated hosts: need root (network namespaces)" >&2; exit 1; }
  command -v tc >/dev/null || { echo "simulated hosts: need tc (apt-get install iproute2)" >&2; exit 1; }
  if [ -z "${BENCH_NETEM_WIRE:-}" ]; then
    ip netns add "rbn$hosts_tag-probe"
    ip -n "rbn$hosts_tag-probe" link set lo up
    if ip netns exec "rbn$hosts_tag-probe" tc qdisc replace dev lo root netem delay 1us 2>/dev/null; then BENCH_NETEM_WIRE=0; else BENCH_NETEM_WIRE=1; fi
    ip netns del "rbn$hosts_tag-probe"
  fi
  if [ "$BENCH_NETEM_WIRE" = 1 ]; then
    [ -x "$hosts_netwire" ] || { echo "simulated hosts: no executable $hosts_netwire (swift build -c release first)" >&2; exit 1; }
    echo "simulated hosts: delays and rates by netwire (user space; this kernel has no netem qdisc, or BENCH_NETEM_WIRE=1)" >&2
    local devices=(--device "$hosts_bridge=$gateway")
    for i in $(seq "$hosts_count"); do devices+=(--device "$(host_device "$i")=10.232.0.$i"); done
    coproc WIRE { exec "$hosts_netwire" run "${devices[@]}"; }
    local ready
    read -r ready <&"${WIRE[0]}"
    case $ready in '{"ready"'*) ;; *) echo "simulated hosts: netwire: $ready" >&2; exit 1 ;; esac
    ip addr add "$gateway/24" dev "$hosts_bridge"
    ip link set "$hosts_bridge" up
  else
    ip link add "$hosts_bridge" type bridge
    ip addr add "$gateway/24" dev "$hosts_bridge"
    ip link set "$hosts_bridge" up
  fi
  for i in $(seq "$hosts_count"); do
    local ns device
    ns=$(host_ns "$i") device=$(host_device "$i")
    ip netns add "$ns"
    if [ "$BENCH_NETEM_WIRE" != 1 ]; then
      ip link add "rbo$hosts_tag$i" type veth peer name "$device"
      ip link set "rbo$hosts_tag$i" master "$hosts_bridge"
      ip link set "rbo$hosts_tag$i" up
    fi
    ip link set "$device" netns "$ns"
    ip netns exec "$ns" ip addr add "10.232.0.$i/24" dev "$device"
    ip netns exec "$ns" ip link set "$device" up
    ip netns exec "$ns" ip link set lo up
  done
  hosts_echo_port=$((20000 + RANDOM % 20000))
  ip netns exec "$(host_ns 2)" "$hosts_netwire" echo --port "$hosts_echo_port" >/dev/null 2>&1 &
  disown  # hosts_down kills it with its namespace; no "Killed" line
}

hosts_down() {
  for i in $(seq "$hosts_count"); do
    ip netns pids "$(host_ns "$i")" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$(host_ns "$i")" 2>/dev/null || true
  done
  [ -z "${WIRE_PID:-}" ] || kill "$WIRE_PID" 2>/dev/null || true
  [ -z "${hosts_bridge:-}" ] || ip link del "$hosts_bridge" 2>/dev/null || true  # with netwire: its device, which also goes when netwire does
}

shape() {  # delay (microseconds) and rate on every host's outgoing link
  if [ "$BENCH_NETEM_WIRE" = 1 ]; then
    echo "shape $1 0 $2" >&"${WIRE[1]}"
    local reply
    read -r reply <&"${WIRE[0]}"
    case $reply in '{"shape"'*) ;; *) echo "simulated hosts: netwire: $reply" >&2; exit 1 ;; esac
    return
  fi
  for i in $(seq "$hosts_count"); do
    if [ "$BENCH_NETEM_WIRE" = tbf ]; then
      # A 1 ms queue at the rate, and bursts of at least 64 KiB (tbf needs a burst above one frame).
      ip netns exec "$(host_ns "$i")" tc qdisc replace dev "$(host_device "$i")" root tbf rate "$2" burst 64kb latency 1ms
    else
      ip netns exec "$(host_ns "$i")" tc qdisc replace dev "$(host_device "$i")" root netem delay "${1}us" rate "$2" limit 100000
    fi
  done
}

probe() {  # round trips host 1 -> host 2 under the current shape, into DIR/ping-*.json
  ip netns exec "$(host_ns 1)" "$hosts_netwire" ping 10.232.0.2 "$hosts_echo_port" --count 50 >"$1/ping-64.json"
  ip netns exec "$(host_ns 1)" "$hosts_netwire" ping 10.232.0.2 "$hosts_echo_port" --count 5 --bytes 1000000 >"$1/ping-1m.json"
}

wire_name() { case $BENCH_NETEM_WIRE in 1) echo "netwire (user space)" ;; tbf) echo "tc tbf (rates only)" ;; *) echo "tc netem" ;; esac; }

wire_stats() {  # netwire's counters (forwarded, dropped, unroutable) as one JSON line, or {} without netwire
  if [ "$BENCH_NETEM_WIRE" != 1 ]; then echo "{}"; return; fi
  echo "stats" >&"${WIRE[1]}"
  local reply
  read -r reply <&"${WIRE[0]}"
  echo "$reply"
}
