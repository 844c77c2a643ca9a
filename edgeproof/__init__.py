"""edgeproof: get an image classifier onto edge devices and prove it still works.

Four floors, each a folder, imports going down only (import-linter's layers contract,
checked on the built wheel by tests/core/test_architecture.py):

- ``edgeproof.cli``: the commands, argparse only;
- ``edgeproof.app``: the use cases that combine the subpackages (run, train, export and
  check, bench, evaluate, optimize, the report page);
- ``edgeproof.toolkit`` (train, evaluate), ``edgeproof.export`` (convert) and
  ``edgeproof.bench`` (measure), which never import each other;
- the core, the modules directly in this folder: errors, validation, options, registries,
  the manifest, preprocessing, datasets, loading a reference model of any kind, atomic
  writes, figures, the machine, TensorFlow compat.

Importing this package is cheap: TensorFlow is imported only by the code that trains or
converts (``edgeproof.tfcompat``), so ``edgeproof.bench`` runs on an edge box that has
only ``ai-edge-litert`` or ``onnxruntime`` plus numpy.
"""

__version__ = "0.2.0"
