"""Entry point: ``python -m grey_runtime [--threads N]``.

stdout is the protocol channel: before anything else is imported, the
original stdout is kept on a private descriptor and descriptor 1 is pointed
at stderr, so that a model (or a library) printing cannot corrupt frames.
"""

import argparse
import os
import sys


def main(argv=None):
    p = argparse.ArgumentParser(prog="grey_runtime", description="Grey's model runtime (frames on stdin/stdout).")
    p.add_argument("--threads", type=int, default=int(os.environ.get("GREY_RUNTIME_THREADS", "1")),
                   help="CPU threads per framework (default 1: reproducible reductions, no oversubscription)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be at least 1")

    proto_out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Unbuffered: the server asks select() whether more frames wait, which
    # a user-space buffer would hide.
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)

    # cuBLAS is deterministic only with a fixed workspace, read when CUDA
    # initialises: set it before anything can import torch.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # The BLAS libraries' own thread pools (OpenBLAS's is separate from
    # torch's intra-op threads) follow the runtime's thread count, read when
    # the library loads: set them before numpy or torch is imported. They
    # are set, not defaulted: --threads is the one setting, so an inherited
    # OPENBLAS_NUM_THREADS cannot make a one-thread runtime run two.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    from .server import Server

    Server(proto_in, proto_out, threads=args.threads).serve()


if __name__ == "__main__":
    main()
