# Facts for the Raspberry Pi Pico 2 (RP2350, Cortex-M33 cores).
NAME = "rp2350"
MCU = "rp2350"
ARCH = "armv7emsp"
FREQ = 150000000
WDT_MAX_MS = 16777  # 24-bit counter ticking at 1 per us: 0xffffff / 1000
FLASH_BLOCK = 4096
FLASH_BLOCKS = 768  # 3 MiB filesystem on a 4 MiB Pico 2
BACKUP_BYTES = 16
BACKUP_KIND = "rp2_scratch"
MPU = "armv8m"  # not modelled yet: hal reports no MPU support
RESET_CAUSES = ("PWRON", "WDT")
TIMER_ID = -1  # machine.Timer id of a soft timer
UART_IDS = (0, 1)
UART1 = (1, 4, 5)
LED_PIN = 25
ADC_PIN = 26
HEAP = 393216
