bolt apply -f bolt-network.toml
