# Outstack Micro's board for MicroPython's ports/qemu: an MPS2 AN385 (Cortex-M3) with what a
# service framework needs. Build with BOARD_DIR=<this folder> (host_tools/outstack/firmware.py
# does); nothing in the MicroPython tree is changed.
QEMU_ARCH = arm
QEMU_MACHINE = mps2-an385

CFLAGS += -mthumb -mcpu=cortex-m3 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_MPS2
CFLAGS += -DMICROPY_HW_MCU_NAME='"Cortex-M3"'
# Our mpconfigport.h comes first and wraps the port's (#include_next); a change to it must
# find every qstr again.
CFLAGS += -I$(BOARD_DIR)
QSTR_GLOBAL_DEPENDENCIES += $(BOARD_DIR)/mpconfigport.h

LDSCRIPT = mcu/arm/mps2.ld
SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o
MPY_CROSS_FLAGS += -march=armv7m

MICROPY_HEAP_SIZE = 196608
MICROPY_STACK_SIZE = 16384
MICROPY_VFS_LFS2 = 1

SRC_C += $(BOARD_DIR)/board.c $(BOARD_DIR)/flash.c
SRC_C += shared/runtime/softtimer.c shared/runtime/mpirq.c

# UART0 input comes from our interrupt-fed ring buffer; waits sleep the core (WFI) instead of
# spinning, so an idle board costs the host no CPU.
LDFLAGS += --wrap=uart_rx_chr --wrap=uart_rx_any --wrap=mp_hal_delay_ms
# Soft timers live on the GC heap: marked in each collection, dropped before a soft reset.
LDFLAGS += --wrap=gc_collect_end --wrap=gc_sweep_all
