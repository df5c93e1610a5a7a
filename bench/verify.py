# OTA verification cost on a board: RSA signature verification for 1024- (reference only: boards
# refuse keys under 2048 bits), 2048- and 3072-bit keys, how long one check holds the loop
# (stepped, as the installer and the console run it, against one pow()), SHA-256 throughput,
# and inflate throughput of a module as `outstack ota pack` compresses it, from RAM and flash.
#
#     mpremote connect PORT run bench/verify.py          (the framework must be on the board)
#     micropython bench/verify.py --short                (CI: one round, to prove it runs)
#     .venv/bin/python bench/verify.py --board mps2-an385  (host: unix board and QEMU, side by side)
#
# The vectors below were made on a host with Python's cryptography package: real keys, real
# PKCS#1 v1.5 SHA-256 signatures of MESSAGE, checked here before they are timed.
import sys

if sys.implementation.name != "micropython":  # the host: run this file on the boards
    from _engines import host_main

    host_main(__file__)
    raise SystemExit
import binascii
import deflate
import gc
import hashlib
import io
import os
import time

sys.path.append("lib")  # run from the repository with the unix port, too
from outstack.ota import verify  # noqa: E402

MESSAGE = b'outstack bench: a manifest stands here'
KEYS = (
    (1024,
     "cd7c01faef08c292afda097e3ec83932b116aaebae798361956db8f1f6f86614edfe2283aa2c1c6ccc9d703c"
     "f0e43d490b78b40e2715f26e9af46513adf20c382b4e23b63d258862feb636a47babf3d6fd7279c1b16fd4fe"
     "df3885a35070e1f53d588e50a9747e2b4c3348ddad866745919abd71742144e0a4c625af9eac79b9",
     "2aa9d50fc3f9e2f472f469901ee5fe6f9a04b201a88ca22234e88aa9f96489fc2a3c5cfb0bf713d7981e88d8"
     "2ee6c054b9ad0807d6c0cd185d78fe82bc6222fb5af1e63892b0afd697671fc798e749a2fd134998c88fc0c6"
     "1205555d4ebd4c08a3f7da26683dde67f031831e3ef3050716ac1ff9529431c5c05c634d1657156c"),
    (2048,
     "90afdd96736929e3e55aa80fc50f0cea4cf2772ea671a719379d799bf129e9dada36e6425d978560c05564c2"
     "ca94d3a683445e6226c14c97293366c7d3c374af9ea9b8cb37288454e4301170b07b095a451e16e9cf49fbc5"
     "1f2b4fcb686f7c2b499b631a92cbdc2a00e0c6f1bb5ba022ac68c52d9974277bd02955e13eff2c377aa50777"
     "76899fc0408c07d59e451bea7a23c5efab2da2dc4d738425dfebcc6e3cb8a2949e17d7163b4495e5f248ffe9"
     "d4571197cfc29fbd8d7dd74f680b033e417d4d0387f9f03b1265b8c4adfc6203cfaee737b4b0309ec27c0702"
     "7353c04c1adbbaeda8437e1212f1be1d9ebca612c4cd32a143d47a3938639a056b839945",
     "14ffa1bdb285dffd5bf4a46b326758796593b5162ea121724caa91c471761a0d3067a3bbeea8e2206a40107c"
     "6bbb4b3fe7016addf2b1b4bcf44e01a9b615042fdf1184b0414dcfd7cc523178c0b31b4084a2374e0cfd43f1"
     "eea74f51831c4af99bc6671ca87dde8cd575ba9e5cf249cf5d3828e3801cf161236afe8b3945748661caab98"
     "6d0ed612a4248da6a0461f8fab8eb447541a8d5b1eead15a67e7f6236e137c3ed0f5a581421e496f478587ba"
     "e4434bd3250ff1b05dcd1c5a849d614cb62734f9523762595d56256bfe2f551f6b0f7140cf2b9b7ee4602847"
     "29d9dc577c5918b7627f03acf9228ae3aed070674227d833a7658c75471628d606471b06"),
    (3072,
     "b56854405750a485af181e5f5ddb036191b1842e0a48b39b0fa6107ccf72937db576752fd57fdae3083b5ea8"
     "020539c67d15241cda992a51cc59737d1fc20bff4d60c55e906269a4b6155f2df72b69d3891fcda88e3786dc"
     "92ecfe75c7bd51e9dfed9f78854158129ef1efdbc8a915ee9a111d0e500bc3176df637e92b4c63ca7b7bd5d0"
     "fad32d7f121f14c8cf466d94b83de69292f7eba8adebd72904857ca5a10c08efdf11b224b3fc23fd25b2434c"
     "9c2125260ea6d1873d458dae472a0199c31fdbed2861f04cd65ac92e37682993abd294320f5a79c250cf4636"
     "56cb92c9fbd88975f500978d937b57208199266cd606b48ccfb4a795988c0358288554fd3e263c475ae1df31"
     "fec445d5c78d1d7f520ef313a24a38d2f9879897d3af8a3f19332d3d4b4f02769ac8310cca30d82f216cd68c"
     "99036275f8b54e5b8e0aed10dc86abf5974c8f2c2a6e438a51eb6fe07e2be126790b2b6ba422585f370263a0"
     "69811762e4de633da60bcf7a05c955f63ad94ed90d14890942f008485b3946ff",
     "52790023c0da937784a2d697a8b4cfa2a7836bb16203b445558f61c698a84f62428e01506683dfe00f465d77"
     "d0253752f5765deb2f93f48ebd964b1ee17be747d7013a6607665a9209e09ecae66017803a92ea30347366a4"
     "0d86c58a8b21673decb9b1fecb1badd71c7382c10653edca1ad8607f1804c5d60a373ef130c2c7da87106d76"
     "f7ccef73d11c2975fc8662a1c6f91a4d88ecfb85c0e27206cbb29dac35cd3724c7e440d29d19cd06445cf614"
     "e96d985a95652b3807e500e6fab04a099236593b244f341bc377aad371a7373d0b9c4acd1d2cac258b414cb6"
     "bd4336bdbd364e1861696585e028766870cc6d1325f968c65e01b2e25ca2d02fc9218f12d9520fcfafb83882"
     "695ff6cbf33161047db6185f772b183b3371e1c88a9317a83d573452e89170d9de0e1d452bbff2ae886e0850"
     "f7c6a26b6e00c60aaa70c0340cb40eedbcf6949431e75ffbd55bc9d944781bbe5d367133616cffac5570124c"
     "cd1c37eb69cc7f70a707ded489b306018be7bdf0cbfc07f0976008f7b3d00625"),
)
# lib/outstack/kernel.py as the packer compresses it (zlib, 1 KB window), base64
SIZE = 7215
BLOB = (
    "KM+lUl1z3MYRfL9fMUWWKoB9gknJT1TOVYpDJq4wjkqU7QcWC9wDBof1Abvw7C6Pl1Ty2zO7wOHrjoqS6IE67Mz09HT3"
    "OXwqEfAJlYUtksIKotvLb27fxKAV/FVmpD/sbanV7wwIs1eZ1FdcQcilaYTNSiSwwmzBID2h8Ui0X5y3n8RDUq318xJK"
    "uSnRWGhIapJ2D4UkY5cBqhQqrxhHWBBgZY1LQJGVQE6B1ZDpuqnQSq0SBv6lRAVK21KqDUgDuUOw5YRPI2jrFx8IM4vf"
    "HHKfU1ZWIK0Bhc82rCKINDHsv95CLvYmXoLRhzkwFWITkBpdsTC/3PzgVVlrQbmJYSdtyVSgQT4qlxnsxBZfO57QBWhH"
    "JlkUpGuovYpNUBFk3WiyfJMytq16FodnK7OtSWuz7H65/lcui+LwW+R5O3rg2YMSApyD3Td4BXKj+PteWEuvcyykwvzB"
    "V6Wy7LOozDsvoz/Oy2esW5vF4vb65+vbO1i1BKNvYz/ReSbZ3guI1iLbbkg7lceQJPAWIkcbjk+8SG/ef+xHL54vL9p/"
    "AaM2V2GP9wZyFHnFhGB3wszoYMXiDz/98U/Xn9KfBj5vejy+SLjK9tlZu3yD9h1oTh077MEIvSqYL8OdW1lVmC8WC54M"
    "LCIf22WbifhqAfzPC5ik/j0NgUkaZ8pJXzfvVI/Qjf4WOE7H20JCWDOrtrl76nE9YFYJY+ADA7ZQ5/CeJUdRVToTzB/E"
    "Tkgr1hWb+hh+Q5P4/6KW0yMYZxpUuQkKhw6vp8dvaXewfmqLUQyaQmdvQ3TIXbyEbq0H6IxJwrg/O02lkjZNI4NV0R3u"
    "//nPJKxbwY9a4bRgLF/BlQvP4QIk+7WESxBUM/gS3gQ3vE1vYae3qKbT4QCePlCM4mk9NVY3XL/j/37gZDN1rbhpTJqf"
    "j0kTWkcqgAzNQVb/NA3GEZtB1qMzLz+/IU0VPp/QUBYTGMYZanONQ9AyRyFrk64Qy751OSIdH6MdGL+ZlDrWn/HxC30P"
    "ziRpaklkuBbZNk3nfSSkwVH3IJMtSe86J/A5W8JXhMaO9DqH74XKsKowh10pK+xidAXC7FUmNZTCcJqJQ76HWj9xnw+9"
    "p/sOCk0btCBt8j/f2HJnbuP0bPE/+vpm6qtTU88+49PbxWKRVcIYuJGFbmHO4T0U8pmPI6k2oAv2r0BClsZA1B5vkJ6Q"
    "jC/yAdCQ1CTtHip8wipORtGUSh6iydmRf8fRIYGKtFgbpnLvpXiAr0LTTEJ+4Y7jQslkjqXNNMczPPc8Gmc7Cn7dCS27"
    "mdWwcKppa81Hn/sar4k0RWe1JuyVsKVQIQ1bJIUVG2cC4dwHA6JaPKdda3wWn1DgPhou+nrEKYZXA6cHvsp3n7r36xVc"
    "DgdzFI9iw4OwGq/sNz6cIjRU5zkdaz+hfTlhe4rla8+yFxWtI9VedMjhJ9aXDkH8Xhhr4LE2m0ewmhtNpzeIwvJfrjwu"
    "QagcOHe0h8cGOYn5I3Ci2Nn2S2YQKQ05ycK+HM3WtiVHWWdLnt8wLvGfFmMe2s7kVTc2LXoILvn/pgVG5Xf+O33mPfzM"
    "f2cwYbMHCj+mxdwhV6zMtiatTTRLlMisfPINN6IyMx9qaQx62AuvcCGJP3alrDCkV6q1fg7hLVxVDXkyVpDtpKrNysdh"
    "rsmYksjzaCC3nBzExnh7TMgUIBPk7+EALittx3cMe44P/EQOj8utK4n1WTKJaBpUeSAfn7IxaQRtk53YIus4ulg37czV"
    "mNsX8poK/wIxwlo/YUdsscgqYQz8JbRcvZTTWjynBonjblZvvp17QCjyPa+/v5GFjka9MRSaIGV/gYTaYHR7/fP17V38"
    "MMscK8HjH/i/eaZazh57NqNEjf79H//0gfIhItxIY2l/Bb4Gr7+DD6SzGZxuZDYa85++8/7OrU1GsrFSq9mmzBGhsjwU"
    "otNt89icYM05KoXKKyQgpwynaDcLqDSNsFnJgV/BxbTGPlC6dvkG7XGRsNHk39PuF29udCWzPZRab68gE1XFqDtpS4ga"
    "5sM+mc0SHOvukaFFPoWarkU+IIcvRn8JEIk0tV4K8L2ZMHNYuSntIGz47H3weun1r5hZ/iks4DNSJg37Jy1EhQxb+X2t"
    "tZ37L8y2U37Rh9NYQbYN8JBEWQeRhNmrTOrFSZiumGScWIupfw0wSVpp3UTxsJzQOlLD8LA8qySnIYwt+cHYJXepHGl1"
    "VgupzkaUzuE9fB/aQXss8qY8+pnHBP6sq1yqTRBni6SwAmnaIAfxrA64INR+VyLhuxFsC2XA54YnJPlB0m5Twl0oJR3L"
    "eAmcvGzr9d0wO9P1w4aEsibpMQvSNWhnWdps200fJG1PGBRtWMkgjPfXJEwi8jcN4smCe/gY79qgxvGakCtzWPOjvnNZ"
    "2fJfTKZIcFgm9ehM6YOgvIhwI41lkfhMA68IotYS/hmfwSuIxj4du9weGDV9x+B2LbaYclryfed4M45cAUpbaJLfHDq/"
    "m+1qElHJp9nZfccKPpHDSS0oGTbcN0lDUpO0+4ekcUwoPu5sBG2THbOKRizTRmZtkkfsqqeK991e/3x9ewev4bIv7EpZ"
    "YSh/t4KLKVM+aUSIex6STDtlp10j7ebdPg1T2n7R69Vofzfp09GeIMxeZe0hldbN/JCWrxfu6liPtJCEqZU1kpkt7nPa"
    "yhPPD30ho4HRTkg7EVzaqMXK+dZKKtY/PhrLtLJSzQwemX8jKoNHNNrEdOkJoU61xz+mFRjk0jTCZiUjfj2WdQLZcJCl"
    "2pwC6YFG2Z4lrT0/04SJqRCbtDbRRQxwDhVa+OGbv4EVZmsC5Z3eooJMVBU7AOQUrNHukN9KLvvHIadcTbvXoOYSmiUU"
    "agm12SxB0GZE9xw+OmWAlTgAgdXMqW6Yg9Q85E3P33VxMiAtr0fjKpvARyENGk6OsPwOFD6TxeT8zBGhsmxL0xfsBX9a"
    "TotJ3ThOlvZTIbsMFyrqqff1QipWYzbgTI+cy6KIhiV8yEV8HOyBno/oLFGtIicC0CRrZ/aM60vOzLPG799xTy2eueU4"
    "GocKfGZ27fIN2hfG9RNS2nacDmc47cu6CBtNNmq6dDgTD0FKC0mY+gCQCUkaBUfpXS91PTYRnxueyrl4IyozSFpojhZI"
    "1a5tQa/m14+tS3KHS78nht+v4OJYCO5X2oJNGtJZkmMl+WKeC4fYhNOyDK4u4SI+ng6BS2ppzCmHD3ySBknq/KVxptir"
    "IPL8QPowFp8c+2/vfHkdD42WAZxDgVUFayylyq/AbCX7musg09qRsUfYyBad3jj4+IkcvnC/yCyLfuQ1X9iNT7FH1t9f"
    "PfDYvT2Zi1b6FvxhlMccRV5JhV8cRqesrI4lS2/ef4z/32QGbPbslGX9Xt/aVwmtI9UWF4tFOImw0WTTtcgj9ipEF4m6"
    "2xqSykZn2lljRba9glfEIL9iZtmYTBjLD/xozuAVRE2iRI0jjHi6o8d35iX4Uqi8QgJdhE1Cwauc20Er/x2tXb5B277F"
    "k53OdNhN0jal3BEv/g0hxz7B"
)


def best_us(fn, rounds):
    best = None
    for _ in range(rounds):
        t = time.ticks_us()
        fn()
        d = time.ticks_diff(time.ticks_us(), t)
        best = d if best is None or d < best else best
    return best


def kbs(nbytes, us):
    return nbytes / 1.024 / us * 1000


def signatures(rounds):
    digest = hashlib.sha256(MESSAGE).digest()
    for bits, n_hex, sig_hex in KEYS:
        nb, sig = binascii.unhexlify(n_hex), binascii.unhexlify(sig_hex)
        key = (b"", int.from_bytes(nb, "big"), len(nb))
        assert verify.rsa_ok(digest, sig, key), "the %d-bit vector does not verify" % bits
        us = best_us(lambda: verify.rsa_ok(hashlib.sha256(MESSAGE).digest(), sig, key), rounds)
        print("verify  RSA-%d PKCS#1 v1.5 SHA-256: %8.2f ms" % (bits, us / 1000))


def held(rounds):
    # How long one RSA-2048 check keeps every other task waiting: the plain pow() (rsa_ok)
    # against the installer's stepped check (rsa_ok_async), in the same loop.
    import asyncio
    from outstack.ota import rsa

    _, n_hex, sig_hex = KEYS[1]
    nb, sig = binascii.unhexlify(n_hex), binascii.unhexlify(sig_hex)
    key = (b"", int.from_bytes(nb, "big"), len(nb))
    digest = hashlib.sha256(MESSAGE).digest()

    async def blocking():
        return rsa.rsa_ok(digest, sig, key)

    async def stepped():
        return await rsa.rsa_ok_async(digest, sig, key)

    async def worst_gap(check):
        st = [0, 0, False]  # longest gap (us), turns, done

        async def other():
            last = time.ticks_us()
            while not st[2]:
                await asyncio.sleep_ms(0)
                now = time.ticks_us()
                st[0] = max(st[0], time.ticks_diff(now, last))
                st[1] += 1
                last = now

        t = asyncio.create_task(other())
        await asyncio.sleep_ms(0)
        t0 = time.ticks_us()
        assert await check(), "the 2048-bit vector does not verify"
        took = time.ticks_diff(time.ticks_us(), t0)
        st[2] = True
        await t
        return st[0], took

    def run(check):
        return max(asyncio.run(worst_gap(check)) for _ in range(rounds))

    (g0, t0), (g1, t1) = run(blocking), run(stepped)
    print("loop held by one RSA-2048 check: %.2f ms stepped, %.2f ms as one pow() (%.2fx)"
          % (g1 / 1000, g0 / 1000, g1 / g0))
    print("one RSA-2048 check, stepped vs pow(): %.2f ms vs %.2f ms (%.2fx)"
          % (t1 / 1000, t0 / 1000, t1 / t0))


def sha256(rounds, size=16384):
    buf = bytearray(size)
    h = hashlib.sha256()
    us = best_us(lambda: h.update(buf), rounds * 4)
    print("sha256  %d B blocks:              %8.0f KB/s" % (size, kbs(size, us)))


def inflate_all(src):
    d = deflate.DeflateIO(src, deflate.ZLIB, 10)
    buf = bytearray(1024)
    n = 0
    while True:
        k = d.readinto(buf)
        if not k:
            return n
        n += k


def inflate(rounds):
    blob = binascii.a2b_base64("".join(BLOB))
    assert inflate_all(io.BytesIO(blob)) == SIZE
    us = best_us(lambda: inflate_all(io.BytesIO(blob)), rounds * 2)
    print("inflate from RAM   (%d -> %d B):  %8.0f KB/s out" % (len(blob), SIZE, kbs(SIZE, us)))
    path = "bench_inflate.z"  # on the board: in / (flash)
    with open(path, "wb") as f:
        f.write(blob)

    def from_flash():
        with open(path, "rb") as f:
            inflate_all(f)

    us = best_us(from_flash, rounds * 2)
    os.remove(path)
    print("inflate from flash (%d -> %d B):  %8.0f KB/s out" % (len(blob), SIZE, kbs(SIZE, us)))


def main():
    try:
        short = BENCH_SHORT  # type: ignore[name-defined]  # noqa: F821  set by a prior exec
    except NameError:
        short = "--short" in sys.argv
    rounds = 1 if short else 5
    print("OTA verification on %s (%s)"
          % (sys.platform, getattr(sys.implementation, "_machine", "?")))
    gc.collect()
    signatures(rounds)
    held(rounds)
    sha256(rounds)
    inflate(rounds)


main()
