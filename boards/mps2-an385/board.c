// Outstack Micro's MPS2 AN385 board: vectors, UART0 input by interrupt, resets and their
// causes, faults that report and reset, and the start of the VM (flash, boot.py, main.py).
#include <stdint.h>

#include "py/runtime.h"
#include "py/mphal.h"
#include "shared/runtime/interrupt_char.h"
#include "shared/runtime/pyexec.h"
#include "shared/runtime/softtimer.h"
#include "board.h"

#define NOINIT_MAGIC (0x4f55544bu)  // "OUTK"
#define SCB_ICSR (*(volatile uint32_t *)0xe000ed04)
#define ICSR_PENDSVSET (1u << 28)
#define SCB_VTOR (*(volatile uint32_t *)0xe000ed08)
#define SCB_AIRCR (*(volatile uint32_t *)0xe000ed0c)
#define SCB_SHCSR (*(volatile uint32_t *)0xe000ed24)
#define SCB_CFSR (*(volatile uint32_t *)0xe000ed28)
#define SCB_MMFAR (*(volatile uint32_t *)0xe000ed34)
#define SCB_BFAR (*(volatile uint32_t *)0xe000ed38)
#define NVIC_ISER0 (*(volatile uint32_t *)0xe000e100)
#define AIRCR_SYSRESETREQ (0x05fa0004u)
#define SHCSR_FAULTS_ENABLE (7u << 16)  // MemManage, BusFault, UsageFault as their own vectors

// CMSDK APB UART0 of the AN385; its RX interrupt is IRQ 0.
typedef struct {
    volatile uint32_t DATA;
    volatile uint32_t STATE;
    volatile uint32_t CTRL;
    volatile uint32_t INTSTATUS;
} board_uart_t;
#define UART0 ((board_uart_t *)0x40004000)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_RX_INT (1u << 3)
#define UART_INT_RX (1u << 1)
#define UART0_RX_IRQ (0)

#define RX_RING_SIZE (512)  // a power of two
static volatile uint8_t rx_ring[RX_RING_SIZE];
static volatile uint32_t rx_head, rx_tail;
static int reset_cause;

static inline void wait_for_interrupt(void) {
    __asm volatile ("wfi");
}

// ---- resets --------------------------------------------------------------------------------

__attribute__((noreturn)) void board_system_reset(uint32_t cause) {
    BOARD_NOINIT->magic = NOINIT_MAGIC;
    BOARD_NOINIT->cause = cause;
    __asm volatile ("dsb");
    SCB_AIRCR = AIRCR_SYSRESETREQ;
    __asm volatile ("dsb");
    for (;;) {
        wait_for_interrupt();
    }
}

int board_reset_cause(void) {
    return reset_cause;
}

static void read_reset_cause(void) {
    // QEMU starts with SSRAM2 zeroed: no magic is a power-on. A reset we did not ask for
    // (the monitor's system_reset, the reset button) finds the HARD we leave behind.
    if (BOARD_NOINIT->magic == NOINIT_MAGIC) {
        reset_cause = BOARD_NOINIT->cause;
    } else {
        reset_cause = BOARD_RESET_PWRON;
        for (unsigned i = 0; i < sizeof(board_noinit_t) / 4; ++i) {
            ((volatile uint32_t *)BOARD_NOINIT)[i] = 0;
        }
        BOARD_NOINIT->magic = NOINIT_MAGIC;
    }
    BOARD_NOINIT->cause = BOARD_RESET_HARD;
    BOARD_NOINIT->running = 0;  // no handler runs yet; fault_running keeps the last fault's
    BOARD_NOINIT->vm_starts = 0;
}

// ---- faults and the watchdog ---------------------------------------------------------------

// frame: the registers the core stacked (r0-r3, r12, lr, pc, xpsr); kind: IPSR.
__attribute__((used, noreturn)) static void fault_report(uint32_t *frame, uint32_t kind) {
    BOARD_NOINIT->fault_kind = kind;
    BOARD_NOINIT->fault_pc = frame[6];
    BOARD_NOINIT->fault_lr = frame[5];
    BOARD_NOINIT->fault_cfsr = SCB_CFSR;
    BOARD_NOINIT->fault_mmfar = SCB_MMFAR;
    BOARD_NOINIT->fault_bfar = SCB_BFAR;
    BOARD_NOINIT->fault_running = BOARD_NOINIT->running;  // which server (hal.noinit names it)
    if (kind == 2) {
        // NMI: the watchdog expired. Its second expiry resets the board; wait for it.
        BOARD_NOINIT->magic = NOINIT_MAGIC;
        BOARD_NOINIT->cause = BOARD_RESET_WDT;
        mp_printf(&mp_plat_print, "\r\nwatchdog expired at pc=%08x server=%u\r\n",
            (unsigned)frame[6], (unsigned)BOARD_NOINIT->running);
        for (;;) {
        }
    }
    mp_printf(&mp_plat_print, "\r\nFATAL: fault %u at pc=%08x lr=%08x cfsr=%08x mmfar=%08x bfar=%08x server=%u\r\n",
        (unsigned)kind, (unsigned)frame[6], (unsigned)frame[5], (unsigned)SCB_CFSR,
        (unsigned)SCB_MMFAR, (unsigned)SCB_BFAR, (unsigned)BOARD_NOINIT->running);
    board_system_reset(BOARD_RESET_HARD);
}

// Every exception but reset, SysTick and UART0 RX comes here: find the stacked frame.
__attribute__((naked)) static void fault_entry(void) {
    __asm volatile (
        "tst lr, #4\n"
        "ite eq\n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "mrs r1, ipsr\n"
        "b fault_report\n"
        );
}

// ---- UART0 input ---------------------------------------------------------------------------

// Move what UART0 holds into the ring. A full ring leaves the byte in the UART and turns the
// RX interrupt off: QEMU then holds back the rest (back-pressure, no byte is lost).
static void uart0_drain(void) {
    while (UART0->STATE & UART_STATE_RXFULL) {
        if (rx_head - rx_tail >= RX_RING_SIZE) {
            UART0->CTRL &= ~UART_CTRL_RX_INT;
            return;
        }
        int c = UART0->DATA & 0xff;
        if (c == mp_interrupt_char) {
            mp_sched_keyboard_interrupt();
        } else {
            rx_ring[rx_head++ % RX_RING_SIZE] = c;
        }
    }
}

static void uart0_rx_irq(void) {
    // Clear first, then drain: a byte that lands after the last check raises the IRQ again.
    UART0->INTSTATUS = UART_INT_RX;
    uart0_drain();
}

// Take bytes the interrupt could not: before it was enabled, or while the ring was full.
static void uart0_catch_up(void) {
    uint32_t state = board_irq_disable();
    if (rx_head - rx_tail < RX_RING_SIZE) {
        UART0->CTRL |= UART_CTRL_RX_INT;
    }
    uart0_drain();
    board_irq_restore(state);
}

int __wrap_uart_rx_any(void) {
    if (rx_head == rx_tail && (UART0->STATE & UART_STATE_RXFULL)) {
        uart0_catch_up();
    }
    return rx_head != rx_tail;
}

int __wrap_uart_rx_chr(void) {
    if (rx_head == rx_tail || !(UART0->CTRL & UART_CTRL_RX_INT)) {
        uart0_catch_up();
    }
    if (rx_head == rx_tail) {
        wait_for_interrupt();  // the caller polls again; the next byte or tick wakes the core
        return -1;
    }
    return rx_ring[rx_tail++ % RX_RING_SIZE];
}

void __wrap_mp_hal_delay_ms(mp_uint_t ms) {
    mp_uint_t start = mp_hal_ticks_ms();
    for (;;) {
        mp_handle_pending(true);
        if (mp_hal_ticks_ms() - start >= ms) {
            return;
        }
        wait_for_interrupt();
    }
}

uint64_t mp_hal_time_ns(void) {
    // No RTC on this board: nanoseconds since the start.
    return (uint64_t)mp_hal_ticks_ms() * 1000000u;
}

// ---- soft timers (machine.Timer) ------------------------------------------------------------
// shared/runtime/softtimer.c keeps the timers; SysTick finds one due and pends PendSV, whose
// handler runs them (Python callbacks are scheduled, not run in the interrupt).

static volatile uint32_t soft_timer_due;
static volatile bool soft_timer_armed;

uint32_t soft_timer_get_ms(void) {
    return mp_hal_ticks_ms();
}

void soft_timer_schedule_at_ms(uint32_t ticks_ms) {
    soft_timer_due = ticks_ms;
    soft_timer_armed = true;
    if ((int32_t)(ticks_ms - mp_hal_ticks_ms()) <= 0) {
        SCB_ICSR = ICSR_PENDSVSET;
    }
}

void SysTick_Handler(void);

static void systick_irq(void) {
    SysTick_Handler();  // the port's millisecond counter
    if (soft_timer_armed && (int32_t)(soft_timer_due - mp_hal_ticks_ms()) <= 0) {
        soft_timer_armed = false;
        SCB_ICSR = ICSR_PENDSVSET;
    }
}

static void pendsv_irq(void) {
    soft_timer_handler();
}

// main.c knows nothing of soft timers: mark them in every collection, and drop the ones on
// the heap before a soft reset sweeps it.
void __real_gc_collect_end(void);
void __wrap_gc_collect_end(void) {
    soft_timer_gc_mark_all();
    __real_gc_collect_end();
}

void __real_gc_sweep_all(void);
void __wrap_gc_sweep_all(void) {
    soft_timer_deinit();
    __real_gc_sweep_all();
}

// ---- vectors -------------------------------------------------------------------------------

extern uint32_t _estack;
void Reset_Handler(void);
void board_uart1_rx_irq(void);  // machine_uart_board.c

#define IRQS (32)
__attribute__((aligned(256))) static const void *const vectors[16 + IRQS] = {
    [0] = &_estack,
    [1] = Reset_Handler,
    [2 ... 14] = fault_entry,
    [7 ... 10] = 0,
    [13] = 0,
    [14] = pendsv_irq,
    [15] = systick_irq,
    [16 ... 16 + IRQS - 1] = fault_entry,
    [16 + UART0_RX_IRQ] = uart0_rx_irq,
    [16 + 2] = board_uart1_rx_irq,  // UART1 RX
};

static void hardware_init(void) {
    SCB_VTOR = (uint32_t)vectors;
    SCB_SHCSR |= SHCSR_FAULTS_ENABLE;
    read_reset_cause();
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
    uart0_catch_up();  // enables the RX interrupt and takes a byte that came before it
}

// ---- the VM's start ------------------------------------------------------------------------

void board_start_vm(void) {
    static bool started;
    if (!started) {
        started = true;
        hardware_init();
    }
    BOARD_NOINIT->vm_starts += 1;
    mp_obj_list_append(mp_sys_path, MP_OBJ_NEW_QSTR(qstr_from_str("/lib")));
    pyexec_frozen_module("_boot.py", false);
    pyexec_file_if_exists("boot.py");
    if (pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL) {
        pyexec_file_if_exists("main.py");
    }
}
