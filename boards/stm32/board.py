# Facts for the pyboard v1.1 (STM32F405, Cortex-M4F).
NAME = "stm32"
MCU = "stm32f405"
ARCH = "armv7emsp"
FREQ = 168000000
WDT_MAX_MS = 32768  # IWDG: 40 kHz LSI nominal, /256 prescaler, 12-bit reload (~32 s, LSI drifts)
FLASH_BLOCK = 512  # internal flash filesystem is exposed as 512-byte blocks
FLASH_BLOCKS = 224  # 112 KiB
BACKUP_BYTES = 80  # RTC_BKP0R..BKP19R
BACKUP_KIND = "stm32_bkp"
MPU = "armv7m"  # Cortex-M4: 8 regions, TEX/C/B/S attributes
RESET_CAUSES = ("PWRON", "HARD", "WDT", "SOFT")
TIMER_ID = -1  # machine.Timer id of a soft timer
UART_IDS = (1, 2, 3, 4, 6)
UART1 = (1, "B6", "B7")
LED_PIN = "A13"
ADC_PIN = "X19"
HEAP = 102400
