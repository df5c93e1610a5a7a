# Runs first on every boot, before main.py (and alone when mpremote soft-resets into raw REPL).
# The module area's installed version goes first on sys.path, before anything imports `app`;
# an update whose health check never finished (the board went down) is rolled back here.


def _boot():
    try:
        from outstack.ota import slots

        slots.boot()
    except Exception as e:  # a damaged OTA store must not keep the board from booting
        print("outstack: OTA store unreadable (%r): running the deployed modules" % e)
    from outstack import unload

    unload("outstack.ota", ("slots",))  # an install loads it again: until then its RAM is free


_boot()
del _boot  # boot.py's names stay in main.py's globals: nothing of it is kept
