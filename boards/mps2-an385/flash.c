// The board's flash: a block device over PSRAM at 0x21000000, for LittleFS (module mps2).
// `outstack sim` backs that PSRAM with a file on the host, so its contents outlive a reset,
// a power cut and the emulator itself, as a flash chip's do.
#include <string.h>

#include "py/runtime.h"
#include "extmod/vfs.h"
#include "shared/runtime/semihosting_arm.h"
#include "board.h"

#define FLASH_BASE (0x21000000u)
#define FLASH_BLOCK_SIZE (4096u)
#define FLASH_BLOCK_COUNT (352u)

#define FLASH_PAGE (256u)

// The host's power-cut switch, in the last PSRAM page (the host writes it into the file that
// backs the PSRAM before power-on): power fails during the cut_after-th erase or program of
// the boot that power-on starts (not of a later one after a reset), once cut_pages pages of
// it are done. The board marks it fired and QEMU exits. `writes` tells the host how many
// erases and programs this boot has made (QemuBoard.flash_writes).
typedef struct {
    uint32_t magic;
    uint32_t cut_after;
    uint32_t cut_pages;
    uint32_t fired;  // the write it failed in
    uint32_t writes;
} flash_cut_t;
#define FLASH_CUT ((volatile flash_cut_t *)0x21fff000)
#define FLASH_CUT_MAGIC (0x21545543u)  // "CUT!"

typedef struct {
    mp_obj_base_t base;
} flash_obj_t;

static uint32_t flash_writes;  // erases and programs since this boot

static const mp_obj_type_t flash_type;
static const flash_obj_t flash_obj = { { &flash_type } };

// The byte range a call names, checked against the flash: a bad one raises, never wraps.
static uint8_t *flash_range(mp_obj_t block_in, size_t offset, size_t len) {
    mp_int_t block = mp_obj_get_int(block_in);
    size_t size = FLASH_BLOCK_SIZE * FLASH_BLOCK_COUNT;
    if (block < 0 || (size_t)block >= FLASH_BLOCK_COUNT) {
        mp_raise_ValueError(MP_ERROR_TEXT("block out of range"));
    }
    size_t start = (size_t)block * FLASH_BLOCK_SIZE + offset;
    if (offset >= size || start > size || len > size - start) {
        mp_raise_ValueError(MP_ERROR_TEXT("beyond the end of the flash"));
    }
    return (uint8_t *)(FLASH_BASE + start);
}

// Copy (or erase with src NULL) len bytes, unless the power fails in this write.
static void flash_program(uint8_t *dest, const uint8_t *src, size_t len) {
    FLASH_CUT->writes = ++flash_writes;
    if (FLASH_CUT->magic == FLASH_CUT_MAGIC && FLASH_CUT->cut_after == flash_writes
        && board_reset_cause() == BOARD_RESET_PWRON) {
        size_t done = FLASH_CUT->cut_pages * FLASH_PAGE;
        len = done < len ? done : len;
        src ? memcpy(dest, src, len) : memset(dest, 0xff, len);
        FLASH_CUT->fired = flash_writes;
        mp_semihosting_exit(1);
    }
    src ? memcpy(dest, src, len) : memset(dest, 0xff, len);
}

static mp_obj_t flash_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 0, 0, false);
    FLASH_CUT->writes = flash_writes;  // 0 after a reset: the host's count starts again
    return MP_OBJ_FROM_PTR(&flash_obj);
}

static mp_obj_t flash_readblocks(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_WRITE);
    size_t offset = n_args == 4 ? mp_obj_get_int(args[3]) : 0;
    memcpy(buf.buf, flash_range(args[1], offset, buf.len), buf.len);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(flash_readblocks_obj, 3, 4, flash_readblocks);

static mp_obj_t flash_writeblocks(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_READ);
    size_t offset = n_args == 4 ? mp_obj_get_int(args[3]) : 0;
    uint8_t *dest = flash_range(args[1], offset, buf.len);
    if (n_args == 3) {
        // The simple interface erases the whole blocks it writes.
        flash_program(dest, NULL, (buf.len + FLASH_BLOCK_SIZE - 1) / FLASH_BLOCK_SIZE * FLASH_BLOCK_SIZE);
    }
    flash_program(dest, buf.buf, buf.len);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(flash_writeblocks_obj, 3, 4, flash_writeblocks);

static mp_obj_t flash_ioctl(mp_obj_t self, mp_obj_t op_in, mp_obj_t arg) {
    switch (mp_obj_get_int(op_in)) {
        case MP_BLOCKDEV_IOCTL_BLOCK_COUNT:
            return MP_OBJ_NEW_SMALL_INT(FLASH_BLOCK_COUNT);
        case MP_BLOCKDEV_IOCTL_BLOCK_SIZE:
            return MP_OBJ_NEW_SMALL_INT(FLASH_BLOCK_SIZE);
        case MP_BLOCKDEV_IOCTL_BLOCK_ERASE:
            flash_program(flash_range(arg, 0, FLASH_BLOCK_SIZE), NULL, FLASH_BLOCK_SIZE);
            return MP_OBJ_NEW_SMALL_INT(0);
        case MP_BLOCKDEV_IOCTL_INIT:
        case MP_BLOCKDEV_IOCTL_DEINIT:
        case MP_BLOCKDEV_IOCTL_SYNC:
            return MP_OBJ_NEW_SMALL_INT(0);
        default:
            return mp_const_none;
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(flash_ioctl_obj, flash_ioctl);

static const mp_rom_map_elem_t flash_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&flash_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&flash_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&flash_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(flash_locals, flash_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    flash_type, MP_QSTR_Flash, MP_TYPE_FLAG_NONE,
    make_new, flash_make_new,
    locals_dict, &flash_locals
    );

static const mp_rom_map_elem_t mps2_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_mps2) },
    { MP_ROM_QSTR(MP_QSTR_Flash), MP_ROM_PTR(&flash_type) },
};
static MP_DEFINE_CONST_DICT(mps2_globals, mps2_globals_table);

const mp_obj_module_t mps2_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&mps2_globals,
};
MP_REGISTER_MODULE(MP_QSTR_mps2, mps2_module);
