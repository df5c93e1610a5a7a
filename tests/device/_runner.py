# Runs one device test module inside MicroPython and prints one result block per test,
# which tests/device/conftest.py turns into pytest items. Async tests run under asyncio.
import sys


class Skip(Exception):
    pass


def _report(name, status, err=None):
    print("@@ %s %s" % (status, name))
    if err is not None:
        sys.print_exception(err)
    print("@@ END")


def run(modname, only=None):
    try:
        mod = __import__(modname)
    except BaseException as e:  # noqa: B036  report it instead of leaving the host waiting
        _report("import", "FAIL", e)
        print("@@ DONE")
        return
    names = [n for n in dir(mod) if n.startswith("test_")]
    for name in names:
        if only and name not in only:
            continue
        fn = getattr(mod, name)
        try:
            result = fn()
            if hasattr(result, "send"):  # an async test
                import asyncio

                asyncio.run(result)
                asyncio.new_event_loop()  # each test starts with a clean loop
            _report(name, "PASS")
        except Skip as e:
            print("@@ SKIP %s %s" % (name, e))
            print("@@ END")
        except BaseException as e:  # noqa: B036  a device test may raise anything
            _report(name, "FAIL", e)
    print("@@ DONE")
