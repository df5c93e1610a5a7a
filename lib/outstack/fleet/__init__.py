# The fleet: a board's presence, heartbeat and signed updates over MQTT (docs/FLEET.md).
# service.py is the server; xfer.py (update transfer) and beat.py load when first needed.
