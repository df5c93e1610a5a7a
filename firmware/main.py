# The application entry point: a one-line hello for now; the servers arrive with the kernel.
from outstack import hal

print("Outstack Micro on %s, reset cause %s" % (hal.board.NAME, hal.reset_cause()))
