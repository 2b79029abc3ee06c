"""`make bench`: cold start, warm latency, quantization, package size and model scale, side by side.

Run as `python -m bench [--quick] [--out FILE]`; see bench/README.md.
"""
