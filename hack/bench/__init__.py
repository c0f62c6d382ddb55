"""`make bench`: every performance figure of the platform, measured in one run on this
machine and printed as a table of ratios (docs/benchmarks.md keeps the last one).

Modules: sink (the Broker stand-in for throughput), apps (the bare Flask apps the gateway
is compared with), servers (gunicorn processes: start, cold start, RSS), load (wrk and
timed requests), apiserver (its /metrics: request rate, calls per ServiceAccount),
synthetic (stores made straight in the API), provisioning (real creates), report (the
table), __main__ (the run).
"""
