"""Helpers shared by the training runners: run options (`options`), the in-memory batch loop and its
checks (`loop`), CUDA graph replay (`cuda_graphs`) and model diagrams read off real modules (`architecture`)."""
