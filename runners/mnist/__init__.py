"""MNIST for the training runners: `loader` reads and checks the files, `datasets` says where they are.

Kept empty on purpose: the registry's data-set hook (`runners.mnist.datasets:mnist_identity`) is
loaded by path, standard library only, and must not depend on anything run here.
"""
