# The server table: name -> how to make the server and what it may do. Factories are
# "module:Class" strings, so a server that config.json switches off is never imported.
TABLE = {
    "hello": {
        "factory": "app.hello:Hello", "priority": 1, "inbox": 8,
        "config": {"greeting": "hello"},
    },
    # Signed updates (`outstack dev`, `outstack ota push`) on UART1 and TCP 8266, and the
    # console on the same links: it needs the "ota" and "debug" rights.
    "ota": {
        "factory": "outstack.ota.service:OtaServer", "essential": True,
        "rights": ("ota", "debug"),
        "config": {"keys": [], "uart": True, "baud": 115200, "tcp_port": 8266,
                   "modules": ["app.*"], "health_ms": 1000},
    },
}
