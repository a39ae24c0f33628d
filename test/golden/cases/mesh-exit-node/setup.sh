bolt apply -f setup/ghostwire.toml
