# Facts for the virtual board: the MicroPython unix port run by `outstack sim`.
# It mirrors an RP2040 Pico where that matters (limits, flash geometry, MPU model) and
# reports every reset cause, so tests can tell them apart.
NAME = "unix"
MCU = "unix"
ARCH = "x64"
FREQ = 125000000
WDT_MAX_MS = 8388
FLASH_BLOCK = 4096
FLASH_BLOCKS = 352
BACKUP_BYTES = 16
BACKUP_KIND = "rtc_memory"
MPU = "armv6m"  # a register model checks what the wrapper writes
RESET_CAUSES = ("PWRON", "HARD", "WDT", "SOFT")
TIMER_ID = -1  # machine.Timer id of a soft timer
UART_IDS = (0, 1)
UART1 = (1, 4, 5)
LED_PIN = 25
ADC_PIN = 26
HEAP = 393216  # twice a Pico's heap: 64-bit objects are about twice as large
