# Facts for the Arm MPS2 AN385 (Cortex-M3) that QEMU emulates (`qemu-system-arm -M mps2-an385`),
# running Outstack Micro's own MicroPython board definition (this folder, for ports/qemu).
NAME = "mps2-an385"
MCU = "cortex-m3"
ARCH = "armv7m"  # mpy-cross -march
FREQ = 25000000  # SysTick and watchdog clock; under -icount shift=5 code runs at 31.25 MIPS
WDT_MAX_MS = 171798  # CMSDK watchdog: 32-bit down-counter at 25 MHz, 0xffffffff / 25000
FLASH_BLOCK = 4096
FLASH_BLOCKS = 352  # 1408 KiB filesystem, as on a 2 MiB Pico; kept in PSRAM at 0x21000000
BACKUP_BYTES = 16
BACKUP_KIND = "mps2_noinit"  # SSRAM2 at 0x20000040: QEMU keeps it over a reset, not a power cut
MPU = "armv7m"  # Cortex-M3 PMSAv7: 8 regions (QEMU reads MPU_TYPE 0x800)
RESET_CAUSES = ("PWRON", "HARD", "WDT", "SOFT", "DEEPSLEEP")
TIMER_ID = -1  # machine.Timer id of a soft timer
UART_IDS = (1,)  # machine.UART(1): machine_uart_board.c; UART0 is the REPL
UART1 = (1, None, None)  # (id, tx pin, rx pin): CMSDK UART1, no pins to choose
LED_PIN = None
ADC_PIN = None
HEAP = 196608  # MICROPY_HEAP_SIZE in mpconfigboard.mk: a Pico's 192 KiB
