# Signed per-module updates: transfer (link, receive, service), verification, install.
