TABLE = {
    "sink": {"factory": "app.dbg:Sink", "provides": ("sink",)},
    "ticker": {"factory": "app.dbg:Ticker", "grants": ("sink",), "depends": ("sink",),
               "config": {"ms": 20}},
    "leaky": {"factory": "app.dbg:Leaky", "mem_limit": 16384,
              "config": {"ms": 50, "enabled": False}},  # off unless the config turns it on
    "console": {"factory": "outstack.debug.server:ConsoleServer", "rights": ("debug",),
                "essential": True, "config": {"uart": True, "tcp_port": 0}},
}
DEFAULTS = {"servers": {"sink": {}, "ticker": {}, "leaky": {"enabled": False}, "console": {}}}
