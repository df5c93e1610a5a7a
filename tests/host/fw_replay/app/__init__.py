TABLE = {
    "parser": {"factory": "app.parse:Parser", "provides": ("parser",), "record": 1200,
               "config": {"max_depth": 8}},
    "feeder": {"factory": "app.parse:Feeder", "grants": ("parser",), "depends": ("parser",),
               "config": {"ms": 2, "bug_at": 1250}},
}
