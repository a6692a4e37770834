"""Lamina's promptable nuclei model (nuclei-v2): model, data, click simulation and evaluation.
Used by models/tools/train_nuclei.py."""
