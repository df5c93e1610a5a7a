// machine.UART(1) on the AN385's CMSDK APB UART1 (included by extmod/machine_uart.c): the
// spare UART the framework's OTA and console servers listen on. UART0 is the REPL (board.c).
// Input comes by interrupt (UART1 RX is IRQ 2) into a ring outside the heap. A full ring turns
// the interrupt off and leaves the byte in the UART, so QEMU holds back the rest: nothing is
// lost, the sender just waits. A write waits for the transmitter a bounded time only: a host
// that never reads cannot hang the board.
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/stream.h"
#include "board.h"

typedef struct {
    volatile uint32_t DATA;
    volatile uint32_t STATE;
    volatile uint32_t CTRL;
    volatile uint32_t INTSTATUS;
    volatile uint32_t BAUDDIV;
} uart1_regs_t;

#define UART1 ((uart1_regs_t *)0x40005000)
#define UART1_RX_IRQ (2)
#define NVIC_ISER0 (*(volatile uint32_t *)0xe000e100)
#define STATE_TXFULL (1u << 0)
#define STATE_RXFULL (1u << 1)
#define CTRL_TX_EN (1u << 0)
#define CTRL_RX_EN (1u << 1)
#define CTRL_RX_INT (1u << 3)
#define INT_RX (1u << 1)
#define UART1_RING (2048u)  // a power of two; more than one update-link frame (1048 bytes)
#define UART1_WRITE_WAIT_MS (100u)  // the longest a write waits for room before giving up

#define MICROPY_PY_MACHINE_UART_CLASS_CONSTANTS

struct _machine_uart_obj_t {
    mp_obj_base_t base;
    uint32_t baudrate;
    uint32_t timeout;  // ms to wait for the first byte of a read
    uint32_t timeout_char;  // ms to wait for each further byte
};

static machine_uart_obj_t machine_uart1 = { { &machine_uart_type }, 115200, 0, 0 };
static volatile uint8_t uart1_ring[UART1_RING];
static volatile uint32_t uart1_head, uart1_tail;

// ---- input ---------------------------------------------------------------------------------

// Move what UART1 holds into the ring; a full ring stops the interrupt (back-pressure).
static void uart1_drain(void) {
    while (UART1->STATE & STATE_RXFULL) {
        if (uart1_head - uart1_tail >= UART1_RING) {
            UART1->CTRL &= ~CTRL_RX_INT;
            return;
        }
        uart1_ring[uart1_head++ % UART1_RING] = UART1->DATA & 0xff;
    }
}

// board.c's vector table points IRQ 2 here.
void board_uart1_rx_irq(void) {
    UART1->INTSTATUS = INT_RX;  // clear first: a byte that lands after the drain raises it again
    uart1_drain();
}

static mp_uint_t uart1_available(void) {
    if (uart1_head == uart1_tail || !(UART1->CTRL & CTRL_RX_INT)) {
        // Room again after a full ring, or a byte that came before the interrupt was on.
        uint32_t state = board_irq_disable();
        if ((UART1->CTRL & CTRL_RX_EN) && uart1_head - uart1_tail < UART1_RING) {
            UART1->CTRL |= CTRL_RX_INT;
        }
        uart1_drain();
        board_irq_restore(state);
    }
    return uart1_head - uart1_tail;
}

// Wait up to `ms` for `ready()`; the core sleeps between checks (a byte or a tick wakes it).
static bool uart1_wait(bool (*ready)(void), uint32_t ms) {
    mp_uint_t start = mp_hal_ticks_ms();
    while (!ready()) {
        if (mp_hal_ticks_ms() - start >= ms) {
            return false;
        }
        mp_handle_pending(true);
        __asm volatile ("wfi");
    }
    return true;
}

static bool uart1_rx_ready(void) {
    return uart1_available() > 0;
}

static bool uart1_tx_ready(void) {
    return !(UART1->STATE & STATE_TXFULL);
}

// ---- the machine.UART interface --------------------------------------------------------------

static void mp_machine_uart_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    machine_uart_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_printf(print, "UART(1, baudrate=%u, bits=8, parity=None, stop=1, timeout=%u, timeout_char=%u)",
        (unsigned)self->baudrate, (unsigned)self->timeout, (unsigned)self->timeout_char);
}

static void mp_machine_uart_init_helper(machine_uart_obj_t *self, size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_baudrate, ARG_bits, ARG_parity, ARG_stop, ARG_timeout, ARG_timeout_char };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_baudrate, MP_ARG_INT, {.u_int = -1} },
        { MP_QSTR_bits, MP_ARG_INT, {.u_int = 8} },
        { MP_QSTR_parity, MP_ARG_OBJ, {.u_obj = mp_const_none} },
        { MP_QSTR_stop, MP_ARG_INT, {.u_int = 1} },
        { MP_QSTR_timeout, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = -1} },
        { MP_QSTR_timeout_char, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = -1} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);
    if (args[ARG_bits].u_int != 8 || args[ARG_parity].u_obj != mp_const_none || args[ARG_stop].u_int != 1) {
        mp_raise_ValueError(MP_ERROR_TEXT("UART1 does 8N1 only"));
    }
    mp_int_t baud = args[ARG_baudrate].u_int;
    if (baud != -1) {
        if (baud < 1200 || (uint32_t)baud > BOARD_CLOCK_HZ / 16) {
            mp_raise_ValueError(MP_ERROR_TEXT("baudrate out of range"));
        }
        self->baudrate = baud;
    }
    if (args[ARG_timeout].u_int >= 0) {
        self->timeout = args[ARG_timeout].u_int;
    }
    if (args[ARG_timeout_char].u_int >= 0) {
        self->timeout_char = args[ARG_timeout_char].u_int;
    }
    UART1->BAUDDIV = BOARD_CLOCK_HZ / self->baudrate;
    UART1->CTRL = CTRL_TX_EN | CTRL_RX_EN;
    NVIC_ISER0 = 1u << UART1_RX_IRQ;
    uart1_available();  // turns the RX interrupt on and takes a byte already waiting
}

static mp_obj_t mp_machine_uart_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 1, MP_OBJ_FUN_ARGS_MAX, true);
    if (mp_obj_get_int(args[0]) != 1) {
        mp_raise_ValueError(MP_ERROR_TEXT("UART(1) only: UART0 is the REPL"));
    }
    mp_map_t kw_args;
    mp_map_init_fixed_table(&kw_args, n_kw, args + n_args);
    mp_machine_uart_init_helper(&machine_uart1, n_args - 1, args + 1, &kw_args);
    return MP_OBJ_FROM_PTR(&machine_uart1);
}

static void mp_machine_uart_deinit(machine_uart_obj_t *self) {
    (void)self;
    UART1->CTRL = 0;  // QEMU holds back what comes next until UART1 is opened again
    uart1_tail = uart1_head;
}

static mp_int_t mp_machine_uart_any(machine_uart_obj_t *self) {
    (void)self;
    return uart1_available();
}

static bool mp_machine_uart_txdone(machine_uart_obj_t *self) {
    (void)self;
    return uart1_tx_ready();
}

static mp_uint_t mp_machine_uart_read(mp_obj_t self_in, void *buf_in, mp_uint_t size, int *errcode) {
    machine_uart_obj_t *self = MP_OBJ_TO_PTR(self_in);
    uint8_t *buf = buf_in;
    if (size == 0) {
        return 0;
    }
    if (!uart1_wait(uart1_rx_ready, self->timeout)) {
        *errcode = MP_EAGAIN;
        return MP_STREAM_ERROR;
    }
    mp_uint_t got = 0;
    while (got < size && uart1_wait(uart1_rx_ready, got ? self->timeout_char : 0)) {
        buf[got++] = uart1_ring[uart1_tail % UART1_RING];
        ++uart1_tail;
    }
    return got;
}

static mp_uint_t mp_machine_uart_write(mp_obj_t self_in, const void *buf_in, mp_uint_t size, int *errcode) {
    (void)self_in;
    const uint8_t *buf = buf_in;
    mp_uint_t done = 0;
    while (done < size && uart1_wait(uart1_tx_ready, UART1_WRITE_WAIT_MS)) {
        UART1->DATA = buf[done++];
    }
    if (done == 0 && size) {
        *errcode = MP_EAGAIN;
        return MP_STREAM_ERROR;
    }
    return done;
}

static mp_uint_t mp_machine_uart_ioctl(mp_obj_t self_in, mp_uint_t request, uintptr_t arg, int *errcode) {
    (void)self_in;
    if (request == MP_STREAM_POLL) {
        mp_uint_t ready = 0;
        if ((arg & MP_STREAM_POLL_RD) && uart1_available()) {
            ready |= MP_STREAM_POLL_RD;
        }
        if ((arg & MP_STREAM_POLL_WR) && uart1_tx_ready()) {
            ready |= MP_STREAM_POLL_WR;
        }
        return ready;
    }
    if (request == MP_STREAM_FLUSH) {
        if (uart1_wait(uart1_tx_ready, UART1_WRITE_WAIT_MS)) {
            return 0;
        }
        *errcode = MP_ETIMEDOUT;
        return MP_STREAM_ERROR;
    }
    *errcode = MP_EINVAL;
    return MP_STREAM_ERROR;
}
