"""`python -m bench` (make bench): what monitoring costs and where it stops keeping up.

Runs its own isolated copy of the bundle (RabbitMQ vhost `bench`, ports 15556/19808/19090/19093/19191,
state in .native/bench/) next to a running native stack, and stops every process it started.
"""
