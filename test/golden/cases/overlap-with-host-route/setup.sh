# An uplink (a veth pair, both ends up, as the dummy module may be missing) routing 10.70.0.0/16.
ip -n "$NS" link add uplink type veth peer name uplink-peer
ip -n "$NS" address add 192.0.2.10/24 dev uplink
ip -n "$NS" link set uplink-peer up
ip -n "$NS" link set uplink up
ip -n "$NS" route add 10.70.0.0/16 via 192.0.2.1
