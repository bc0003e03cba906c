"""The CNN's C kernels for CPU training: each block's Python module with its C file beside it
(`conv_pool.py` + `conv_pool.c`, `winograd_pool.py` + `winograd_pool.c`), built by `build.py` with the
shared `build.h`."""
