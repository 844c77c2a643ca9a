"""The application floor: the use cases that combine the subpackages.

Each module is one thing a user does, callable from Python exactly as the CLI calls it:
``run`` (train → export → bench → report), ``train`` (a model written as an artifact),
``export_and_check`` (convert a model and check every export against it), ``bench`` (many
artifacts and a report), ``evaluate`` (a model's evaluation with its page), ``optimize``
with its ``ladder`` (the search for the fastest export that passes the gate), and the
one report-writing step (``reporting``) with its page (``report_page``).

This is the only floor that imports ``edgeproof.toolkit``, ``edgeproof.export`` and
``edgeproof.bench`` together; ``edgeproof.cli`` sits above it and only parses arguments.
"""
