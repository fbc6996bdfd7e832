"""glibc's malloc settings under which the benchmarks time large tensors (no torch import here,
so a parent process can hand them to a child it starts).

glibc serves every allocation of >= 32 MiB (after its dynamic threshold) with fresh ``mmap``
pages and returns them on free, so every new 64 MiB tensor pays ~16k page faults, more than the
kernel being timed. glibc reads these variables only at process start.
"""

MALLOC_ENV = {
    # 4 GiB (accepted by glibc 2.36; measured: a 64 MiB tensor then comes from the heap) keeps
    # every benchmark tensor off fresh mmaps.
    "MALLOC_MMAP_THRESHOLD_": str(4 * 1024**3),
    # Never give freed heap memory back to the kernel (so reused pages are already mapped).
    "MALLOC_TRIM_THRESHOLD_": str(64 * 1024**3),
}
