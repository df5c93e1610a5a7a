# Frozen modules of the board itself (the project's manifest.py includes this one).
freeze("$(BOARD_DIR)/modules", "_boot.py")
