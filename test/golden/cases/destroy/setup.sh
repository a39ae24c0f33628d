# keep0 is not bolt's: destroy must not list it.
ip -n "$NS" link add keep0 type bridge
bolt apply -f setup/bolt-network.toml
