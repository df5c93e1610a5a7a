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
BACKUP_KIND = "mps2_noinit"  # SSRAM2 at 0x20000020: QEMU keeps it over a reset, not a power cut
NOINIT = 0x20000000  # board.c's words kept over a reset (board.h): fault, running server
MPU = "armv7m"  # Cortex-M3 PMSAv7: 8 regions (QEMU reads MPU_TYPE 0x800)
# Guards System.boot arms (outstack.hal.mpu.arm): a 32 B no-access region 4 KiB below the
# 16 KiB C stack (0x3fc000..0x400000; MicroPython's stack check raises RuntimeError within
# it, the guard catches C code that runs past it), and the OTA keys and commit pointer area
# in SSRAM2, read-only outside `window.opened`.
MPU_STACK = 0x003FB000
MPU_OTA = (0x20000400, 0x400)
RESET_CAUSES = ("PWRON", "HARD", "WDT", "SOFT", "DEEPSLEEP")
TIMER_ID = -1  # machine.Timer id of a soft timer
UART_IDS = (1,)  # machine.UART(1): machine_uart_board.c; UART0 is the REPL
UART1 = (1, None, None)  # (id, tx pin, rx pin): CMSDK UART1, no pins to choose
LED_PIN = "fpgaio"  # no GPIO pin: outstack.hal drives LED0 of the FPGA IO block (0x40028000)
ADC_PIN = None  # the AN385 has no ADC: the demo's sensor says so and publishes nothing
HEAP = 196608  # MICROPY_HEAP_SIZE in mpconfigboard.mk: a Pico's 192 KiB
