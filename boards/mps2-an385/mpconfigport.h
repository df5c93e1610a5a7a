// Outstack Micro's MPS2 AN385 board: the qemu port's configuration, then what this board adds.
// Found before the port's own file (-I$(BOARD_DIR) comes first), which it includes.
#include_next <mpconfigport.h>

#undef MICROPY_PY_ASYNCIO
#define MICROPY_PY_ASYNCIO (1)

// machine: a real reset, reset_cause, WDT on the CMSDK watchdog, disable_irq/enable_irq.
#undef MICROPY_PY_MACHINE_INCLUDEFILE
#define MICROPY_PY_MACHINE_INCLUDEFILE "machine_board.c"
#define MICROPY_PY_MACHINE_WDT (1)
#define MICROPY_PY_MACHINE_WDT_INCLUDEFILE "machine_wdt_board.c"
#define MICROPY_PY_MACHINE_DISABLE_IRQ_ENABLE_IRQ (1)
#define MICROPY_PY_MACHINE_BARE_METAL_FUNCS (1)
#define MICROPY_PY_MACHINE_TIMER (1)
#define MICROPY_PY_MACHINE_UART (1)
#define MICROPY_PY_MACHINE_UART_INCLUDEFILE "machine_uart_board.c"
#define MICROPY_PY_PENDSV_ENTER uint32_t pendsv_state = board_irq_disable()
#define MICROPY_PY_PENDSV_EXIT board_irq_restore(pendsv_state)
#define MICROPY_PY_MACHINE_EXTRA_GLOBALS \
    { MP_ROM_QSTR(MP_QSTR_PWRON_RESET), MP_ROM_INT(BOARD_RESET_PWRON) }, \
    { MP_ROM_QSTR(MP_QSTR_HARD_RESET), MP_ROM_INT(BOARD_RESET_HARD) }, \
    { MP_ROM_QSTR(MP_QSTR_WDT_RESET), MP_ROM_INT(BOARD_RESET_WDT) }, \
    { MP_ROM_QSTR(MP_QSTR_DEEPSLEEP_RESET), MP_ROM_INT(BOARD_RESET_DEEPSLEEP) }, \
    { MP_ROM_QSTR(MP_QSTR_SOFT_RESET), MP_ROM_INT(BOARD_RESET_SOFT) }, \
    { MP_ROM_QSTR(MP_QSTR_Timer), MP_ROM_PTR(&machine_timer_type) },

#define MICROPY_PY_TIME_TIME_TIME_NS (1)
#define MICROPY_PY_TIME_INCLUDEFILE "modtime_board.c"

// Mount the flash, run boot.py and main.py: at the end of every mp_init().
#define MICROPY_PORT_INIT_FUNC board_start_vm()

#define BOARD_RESET_PWRON (1)
#define BOARD_RESET_HARD (2)
#define BOARD_RESET_WDT (3)
#define BOARD_RESET_DEEPSLEEP (4)
#define BOARD_RESET_SOFT (5)

#ifndef __ASSEMBLER__
void board_start_vm(void);

static inline uint32_t board_irq_disable(void) {
    uint32_t state;
    __asm volatile ("mrs %0, primask\n cpsid i" : "=r" (state) : : "memory");
    return state;
}

static inline void board_irq_restore(uint32_t state) {
    __asm volatile ("msr primask, %0" : : "r" (state) : "memory");
}
#endif

#define MICROPY_BEGIN_ATOMIC_SECTION() board_irq_disable()
#define MICROPY_END_ATOMIC_SECTION(state) board_irq_restore(state)
