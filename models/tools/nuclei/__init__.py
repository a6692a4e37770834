"""Lamina's promptable nuclei model (nuclei-v3): model, data, click simulation and evaluation.
Used by models/tools/train_nuclei.py."""
