"""rankbench: how well do one-shot multi-path NAS supernets rank NAS-Bench-101 cells?"""
__version__ = "0.1.0"
