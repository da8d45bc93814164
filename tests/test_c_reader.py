"""A C program maps the counter file read-only and reads the generation Python reports."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import snapsafe
from snapsafe import genid

C_READER = r"""
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    const char *path = getenv("SNAPSAFE_SYSGENID_PATH");
    if (!path) return 3;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 4;
    const volatile uint32_t *gen = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (gen == MAP_FAILED) return 5;
    char line[16];
    while (fgets(line, sizeof line, stdin)) { printf("%u\n", *gen); fflush(stdout); }
    return 0;
}
"""


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed")
    d = tmp_path_factory.mktemp("creader")
    (d / "reader.c").write_text(C_READER)
    subprocess.run(["gcc", "-O2", "-o", str(d / "reader"), str(d / "reader.c")], check=True)
    return d / "reader"


def test_c_reader_sees_the_same_generation(counter, reader):
    proc = subprocess.Popen([str(reader)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={"SNAPSAFE_SYSGENID_PATH": genid.path()})
    try:
        seen = []
        for target in (0, 1, 9, 10):
            if target:
                genid.trigger(target)
            proc.stdin.write("?\n")
            proc.stdin.flush()
            seen.append((int(proc.stdout.readline()), snapsafe.generation()))
        assert seen == [(0, 0), (1, 1), (9, 9), (10, 10)]
    finally:
        proc.stdin.close()
        assert proc.wait(10) == 0
