ip netns add "${PREFIX}worker"
bolt apply -f setup/bolt-network.toml
