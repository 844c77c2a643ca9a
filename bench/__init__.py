"""Runtimes and measurement. TensorFlow is imported only when the Keras runtime is used."""
