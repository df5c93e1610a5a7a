# The demo's server table and its built-in config. Factories are "module:Class" strings so
# only the servers a config enables are imported (and pay their RAM).
TABLE = {
    "sensor": {
        "factory": "app.sensor:Sensor", "priority": 2, "publishes": ("readings",),
        "config": {"period_ms": 500},
    },
    "processing": {
        "factory": "app.processing:Processing", "priority": 1, "grants": ("storage",),
        "subscribes": ("readings",), "publishes": ("summaries",),
        "config": {"window": 8, "every": 4},
    },
    "storage": {
        "factory": "app.storage:Storage", "priority": 0, "provides": ("storage",),
        "essential": True,  # in safe mode too: the record of what was measured stays
        "budget_us": 100000,  # a flush writes to flash: slower than a message, and rare
        "config": {"path": "/data/readings.csv", "max_bytes": 32768, "batch": 8},
    },
    "status": {
        "factory": "app.status:Status", "priority": 0, "grants": ("storage", "uplink"),
        "subscribes": ("summaries",), "depends": ("storage",),
        "essential": True,  # in safe mode too: the console still says the board is alive
        "config": {"every_ms": 3000},
    },
    # Signed updates and the console on UART1 and on TCP 8266 (Wi-Fi), trusting the keys the
    # project gives it (outstack.toml [ota] trust); essential, so safe mode can be updated.
    "ota": {
        "factory": "outstack.ota.service:OtaServer", "priority": 1, "essential": True,
        "rights": ("ota", "debug"),
        "config": {"keys": [], "uart": True, "baud": 115200, "tcp_port": 8266,
                   "modules": ["app.*"]},
    },
    "uplink": {
        "factory": "app.uplink:Uplink", "priority": 0, "subscribes": ("summaries",),
        "config": {"ssid": "", "key": "", "host": "127.0.0.1", "port": 9000, "backlog": 16,
                   "join_ms": 10000, "retry_ms": 2000},
    },
    # The fleet (docs/FLEET.md): presence, heartbeat and signed updates over MQTT; off unless
    # /config.json says "enabled": true (with the Wi-Fi, the broker and the trusted keys).
    "fleet": {
        "factory": "outstack.fleet.service:FleetServer", "priority": 0, "rights": ("ota",),
        "config": {"enabled": False, "ssid": "", "key": "", "host": "127.0.0.1", "port": 1883,
                   "root": "outstack", "period_ms": 10000, "keys": [], "modules": ["app.*"]},
    },
}

# What runs without a usable /config.json: everything but the uplink, which needs settings.
DEFAULTS = {
    "servers": {"sensor": {}, "processing": {}, "storage": {}, "status": {}, "ota": {},
                "uplink": {"enabled": False}, "fleet": {"enabled": False}},
}
