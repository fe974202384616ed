"""overfit"""
