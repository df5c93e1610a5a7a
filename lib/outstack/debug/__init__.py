# Field debugging: message watch (record and trace); the console and replay build on it.
