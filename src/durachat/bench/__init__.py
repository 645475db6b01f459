"""`durachat bench`: DuraChat's performance, measured against a bare relay.

One module per scenario family (`streaming`: throughput and fan-out; `process`:
start-up and first token), `servers` and `wsclient` for the processes and sockets
they drive, `runner` and `report` for the run and its table. `relay` is the
baseline server. Nothing here is imported by the server itself.
"""
