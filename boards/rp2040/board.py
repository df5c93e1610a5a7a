# Facts for the Raspberry Pi Pico (RP2040). Imported by outstack.hal on the device,
# parsed (literals only) by host_tools on the host: one source for both.
NAME = "rp2040"
MCU = "rp2040"
ARCH = "armv6m"  # mpy-cross -march
FREQ = 125000000
WDT_MAX_MS = 8388  # 24-bit down-counter ticking at 2 per us (RP2040-E1): 0xffffff / 2000
FLASH_BLOCK = 4096
FLASH_BLOCKS = 352  # 1408 KiB filesystem on a 2 MiB Pico
BACKUP_BYTES = 16  # watchdog SCRATCH0..3; the SDK owns SCRATCH4..7
BACKUP_KIND = "rp2_scratch"
MPU = "armv6m"  # Cortex-M0+: 8 regions
RESET_CAUSES = ("PWRON", "WDT")  # rp2 cannot tell a soft, hard or brown-out reset apart
TIMER_ID = -1  # machine.Timer id of a soft timer
UART_IDS = (0, 1)
UART1 = (1, 4, 5)  # (id, tx pin, rx pin)
LED_PIN = 25
ADC_PIN = 26
HEAP = 196608  # bytes the virtual board gives the interpreter when it plays this board
