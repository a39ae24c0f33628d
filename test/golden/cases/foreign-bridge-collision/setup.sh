ip -n "$NS" link add br-lan type bridge
ip -n "$NS" link set br-lan up
