# Runs at every start before boot.py: mounts the flash filesystem at /, making it on first use.
import mps2
import vfs

_bdev = mps2.Flash()
try:
    vfs.mount(vfs.VfsLfs2(_bdev), "/")
except OSError:
    vfs.VfsLfs2.mkfs(_bdev)
    vfs.mount(vfs.VfsLfs2(_bdev), "/")
del _bdev
