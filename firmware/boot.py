# Runs first on every boot, before main.py (and alone when mpremote soft-resets into raw REPL).
