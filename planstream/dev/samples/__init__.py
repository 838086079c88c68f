"""Synthetic floor plans with their truth: the scripted model server answers from them."""
