"""Run the bundle as local processes ("native mode"), from the same config files compose uses."""
