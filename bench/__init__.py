"""`python -m bench` (make bench): what monitoring costs and where it stops keeping up.

Runs its own isolated copy of the bundle (RabbitMQ vhost `bench`, its own ports: bench/state.py PORTS,
state in .native/bench/) next to a running native stack, and stops every process it started.
"""
