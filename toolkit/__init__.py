"""The toolkit floor (``edgeproof.toolkit``): models and training.

The model registry (the lab CNNs, InceptionV3 / ResNet50 transfer models), the tf.data
input pipeline and augmentation presets, training with checkpoints, resume, mixed
precision and tf.distribute, and the evaluation the lab reports show (classification
report, confusion matrix, curves, worst images, Grad-CAM). It imports the core only,
never ``edgeproof.export`` or ``edgeproof.bench``; TensorFlow is imported through
``edgeproof.tfcompat`` when a model is built or trained.
"""
