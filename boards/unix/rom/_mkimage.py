# Builds a board's flash image with the port's own LittleFS, so the host never writes a
# format the board cannot read. Usage (by the host only): micropython _mkimage.py JOB_JSON
import json
import os
import sys
import vfs
from _flash import Flash


def _makedirs(path):
    part = ""
    for name in path.split("/")[1:-1]:
        part += "/" + name
        try:
            os.mkdir(part)
        except OSError:
            pass  # already there


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    bs, n = job["block_size"], job["block_count"]
    img = open(job["image"], "w+b")
    blank = b"\xff" * bs
    for _ in range(n):
        img.write(blank)
    dev = Flash(img, bs, n)
    vfs.VfsLfs2.mkfs(dev, progsize=256, readsize=256)
    vfs.mount(vfs.VfsLfs2(dev, progsize=256, readsize=256), "/flash")
    for src, dest in job["files"]:
        _makedirs("/flash" + dest)
        with open(src, "rb") as fin, open("/flash" + dest, "wb") as fout:
            while True:
                chunk = fin.read(4096)
                if not chunk:
                    break
                fout.write(chunk)
    print("free blocks", os.statvfs("/flash")[3])
    vfs.umount("/flash")
    img.close()


main()
