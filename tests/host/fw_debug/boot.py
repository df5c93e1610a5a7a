# Runs first on every boot, before main.py (and alone when mpremote soft-resets into raw REPL).
# The module area's installed version goes first on sys.path, before anything imports `app`;
# an update whose health check never finished (the board went down) is rolled back here.
try:
    from outstack.ota import slots

    slots.boot()
except Exception as e:  # a damaged OTA store must not keep the board from booting
    print("outstack: OTA store unreadable (%r): running the deployed modules" % e)
