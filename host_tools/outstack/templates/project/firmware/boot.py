# Runs first on every boot: puts the modules of the last good OTA update first on sys.path
# (before main.py imports `app`) and rolls back an update whose health check never finished.
try:
    from outstack.ota import slots

    slots.boot()
except Exception as e:  # a damaged update store must not keep the board from booting
    print("outstack: OTA store unreadable (%r): running the deployed modules" % e)
