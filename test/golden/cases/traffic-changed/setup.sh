bolt apply -f setup/bolt-network.toml
