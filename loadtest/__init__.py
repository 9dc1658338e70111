"""Load generator for the bundle: scenarios submitted through the app's API, with a live progress
display and a summary (rates, latency percentiles, failures, alerts firing). See `python -m loadtest -h`."""
