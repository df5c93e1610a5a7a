# Facts for a generic ESP32 (Xtensa LX6) board with 4 MiB flash.
NAME = "esp32"
MCU = "esp32"
ARCH = "xtensawin"
FREQ = 160000000
WDT_MAX_MS = 2147483647  # task WDT takes any 32-bit ms value; no hardware ceiling below that
FLASH_BLOCK = 4096
FLASH_BLOCKS = 512  # 2 MiB vfs partition
BACKUP_BYTES = 2048  # RTC slow memory through machine.RTC().memory()
BACKUP_KIND = "rtc_memory"
MPU = None  # no Cortex-M MPU on this chip: the software policy applies
RESET_CAUSES = ("PWRON", "HARD", "WDT", "DEEPSLEEP", "SOFT")
TIMER_ID = 0  # esp32 has no virtual timer: hardware timer 0
UART_IDS = (0, 1, 2)
UART1 = (1, 10, 9)
LED_PIN = 2
ADC_PIN = 34
HEAP = 131072
