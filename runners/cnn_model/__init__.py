"""The §2.5 CNN: the model and its fused kernels (`net`), the training step (`steps`), the cnn runner's
training recipe (`recipe`: data rules, loop, trained weights as a file) and what deployment runners do with
the trained model (`deploy`)."""
