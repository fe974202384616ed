"""The bottom layer: closed vocabularies, the result-type registry, safe writes, progress bars,
the version. Imports nothing of probe."""
